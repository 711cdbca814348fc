"""Chart geometry for the HTML report: plain data that the SVG macros of the templates draw.

Charts are server-side SVG with presentation attributes only (``fill=``, ``stroke=``...), so they
render under Jenkins' Content-Security-Policy (no scripts, no inline styles), in e-mail and on
paper. Text is never built here as markup: the templates escape everything they print.

Palette (Okabe-Ito, safe for the common colour-vision deficiencies): reference blue #0072B2,
current orange #E69F00, drift vermillion #D55E00, no-drift bluish green #009E73. Reference bars
are filled and current ones outlined, so the two stay apart in grey too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from churnops.monitor.results import Chunks, ColumnDrift, Distribution, TargetDrift
from churnops.report.formats import visible_spaces

REFERENCE = "#0072B2"
CURRENT = "#E69F00"
DRIFT = "#D55E00"
OK = "#009E73"
GRID = "#d0d4d9"
INK = "#1f2933"
MUTED = "#616e7c"


def chance(value: float) -> str:
    """A probability that is never quite zero: ``0.0`` -> ``'<0.01%'`` (a false-alarm rate of
    "at most 0%" promised what no test can keep).

    >>> chance(0.0), chance(0.049)
    ('<0.01%', '4.9%')
    """
    return "<0.01%" if value < 0.0001 else percent(value)


def percent(value: float) -> str:
    """A share for people: ``0.2345`` -> ``'23.4%'``; tiny non-zero shares stay visible.

    >>> percent(0.2345), percent(0.0), percent(0.00004)
    ('23.4%', '0%', '<0.01%')
    """
    if value == 0:
        return "0%"
    if abs(value) < 0.0001:
        return "<0.01%"
    if abs(value) < 0.01:
        return f"{value * 100:.2f}%"
    return f"{value * 100:.1f}%"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str
    stroke: str = "none"
    opacity: float = 1.0
    title: str = ""
    stroke_width: float = 1.5


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"
    size: int = 11
    fill: str = MUTED
    weight: str = "normal"
    halo: bool = False
    """A white outline under the text, so it reads on top of bars."""
    wide_only: bool = False
    """A label that only fits a wide chart: the stylesheet hides it on narrow screens."""


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = GRID
    width: float = 1.0
    dash: str = ""
    cap: str = ""
    """``round`` draws a zero-length line as a dot that stays round in a stretched plot."""


@dataclass(frozen=True)
class Shape:
    """An SVG path: an outline, or a filled area."""

    d: str
    stroke: str = "none"
    width: float = 0.0
    fill: str = "none"
    opacity: float = 1.0


@dataclass(frozen=True)
class Chart:
    """Everything an SVG macro needs: size, accessible title, shapes and text."""

    width: int
    height: int
    title: str
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    paths: list[Shape] = field(default_factory=list)
    text: bool = True
    """Whether the chart has text (sparklines have none: no font attributes needed)."""


PLOT_WIDTH = 1000.0
"""Plot units across a fluid chart's plot area, whatever its width on screen."""


@dataclass(frozen=True)
class FluidChart:
    """A chart as wide as its box (``_svg.html.j2``'s ``fluid_svg``).

    ``bars``, ``paths``, ``marks`` and ``hits`` are in plot units - x from 0 to ``PLOT_WIDTH``,
    y in pixels down from ``plot_top`` - and are stretched to the width with strokes that do not
    scale; ``lines`` and ``labels`` have x in percent of the width and y in pixels, so text keeps
    its size. The chart fills a desktop and still reads on a phone.
    """

    height: int
    title: str
    plot_top: float
    plot_height: float
    bars: list[Bar] = field(default_factory=list)
    paths: list[Shape] = field(default_factory=list)
    marks: list[Line] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    hits: list[Bar] = field(default_factory=list)
    """Transparent areas that carry the tooltips (also of bars too small to point at)."""


SPARK_BINS = 15


def _pairs(shares: list[float], kind: str) -> list[float]:
    """Numerical bins merged two by two (a sparkline needs no more detail); categories kept."""
    if kind != "bins" or len(shares) <= SPARK_BINS:
        return shares
    return [sum(shares[i : i + 2]) for i in range(0, len(shares), 2)]


def sparkline(column: ColumnDrift, width: int = 120, height: int = 28) -> Chart | None:
    """A tiny overlaid histogram: reference as a filled blue area, current as an orange outline."""
    distribution = column.distribution
    if distribution is None or not distribution.labels:
        return None
    reference = _pairs(distribution.reference, distribution.kind)
    current = _pairs(distribution.current, distribution.kind)
    top = max(max(reference), max(current), 1e-12)
    step = width / len(reference)
    area = _step_path(reference, step, height, top, height - 2) + "Z"
    outline = _step_path(current, step, height, top, height - 2)
    title = f"{column.name}: reference (filled) vs current (outline)"
    shapes = [Shape(area, fill=REFERENCE, opacity=0.45), Shape(outline, CURRENT, 1.5)]
    return Chart(width, height, title, paths=shapes, text=False)


def _step_path(shares: list[float], step: float, baseline: float, top: float, span: float, x0: float = 0.0) -> str:
    """An outline of bars as one SVG path (the current sample's shape)."""
    points = [f"M{x0:.1f} {baseline:.1f}"]
    for i, share in enumerate(shares):
        y = baseline - share / top * span
        points.append(f"V{y:.1f}H{x0 + (i + 1) * step:.1f}")
    points.append(f"V{baseline:.1f}")
    return "".join(points).replace(".0V", "V").replace(".0H", "H")


def score_gauge(score: float, threshold: float, detected: bool, width: int = 280, height: int = 40) -> Chart:
    """The dataset drift score on a 0-1 scale with the trigger threshold marked."""
    inner = width - 20
    bar = Bar(
        10,
        12,
        inner * min(max(score, 0.0), 1.0),
        12,
        DRIFT if detected else OK,
        title=f"dataset drift score {score:.3f}, threshold {threshold:g}",
    )
    track = Bar(10, 12, inner, 12, "#eef0f3", GRID)
    mark = 10 + inner * threshold
    return Chart(
        width,
        height,
        f"dataset drift score {score:.3f} against the threshold {threshold:g}",
        bars=[track, bar],
        lines=[Line(mark, 6, mark, 30, INK, 2)],
        labels=[
            # near an end the label is anchored to that end, so it is never cut off
            Label(
                mark,
                40,
                f"threshold {threshold:g}",
                "start" if threshold < 0.2 else "end" if threshold > 0.8 else "middle",
                size=10,
            ),
            Label(10, 8, "0", "start", 9),
            Label(width - 10, 8, "1", "end", 9),
        ],
    )


def rate_chart(target: TargetDrift, width: int = 360, height: int = 150) -> Chart | None:
    """Positive-label rate in reference and current; the 95% interval of the change on the current bar."""
    if target.reference_rate is None or target.current_rate is None:
        return None
    left, plot_h = 40, height - 50
    peak = nice_ceiling(
        max(target.reference_rate, target.current_rate, (target.ci95 or (0, 0))[1] + target.reference_rate)
    )
    bars, labels = [], []
    whisker_top = 10 + plot_h - (target.reference_rate + target.ci95[1]) / peak * plot_h if target.ci95 else height
    for i, (name, rate, colour) in enumerate(
        (("reference", target.reference_rate, REFERENCE), ("current", target.current_rate, CURRENT))
    ):
        x = left + 30 + i * 130
        h = rate / peak * plot_h
        top = 10 + plot_h - h if i == 0 else min(10 + plot_h - h, whisker_top)
        bars.append(Bar(x, 10 + plot_h - h, 70, h, colour, opacity=0.85, title=f"{name}: {percent(rate)}"))
        labels.append(Label(x + 35, top - 5, percent(rate), size=12, fill=INK, weight="bold"))
        labels.append(Label(x + 35, height - 12, name, size=11))
    lines = []
    if target.ci95 is not None:
        low = target.reference_rate + target.ci95[0]
        high = target.reference_rate + target.ci95[1]
        x = left + 30 + 130 + 35
        y_low, y_high = 10 + plot_h - low / peak * plot_h, 10 + plot_h - high / peak * plot_h
        lines += [
            Line(x, y_low, x, y_high, INK, 2),
            Line(x - 6, y_low, x + 6, y_low, INK, 2),
            Line(x - 6, y_high, x + 6, y_high, INK, 2),
        ]
    axis_lines, axis_labels = _y_axis(left, 10, width - left - 10, plot_h, peak)
    title = f"{target.column} rate: reference {percent(target.reference_rate)}, current {percent(target.current_rate)}"
    return Chart(width, height, title, bars=bars, lines=axis_lines + lines, labels=axis_labels + labels)


def trend_chart(
    series: list[tuple[str, float]],
    threshold: float | None,
    label: str,
    height: int = 190,
    colour: str = REFERENCE,
    as_percent: bool = False,
) -> FluidChart | None:
    """A line over runs (oldest first), as wide as its box, titled, with an optional threshold
    line; every run is a dot with a tooltip."""
    if len(series) < 1:
        return None
    plot_top, plot_h = 30.0, height - 30.0 - 24
    values = [v for _, v in series if v is not None and not math.isnan(v)]
    peak = nice_ceiling(max(values + ([threshold] if threshold is not None else []) + [1e-12]))
    n = len(series)
    inset = 15.0  # dots at the ends stay whole
    xs = [inset + (PLOT_WIDTH - 2 * inset) * i / (n - 1) if n > 1 else PLOT_WIDTH / 2 for i in range(n)]
    ys = [plot_h - v / peak * plot_h for _, v in series]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(zip(xs, ys, strict=True)))
    marks = [Line(x, y, x, y, colour, 7, cap="round") for x, y in zip(xs, ys, strict=True)]
    slot = PLOT_WIDTH / n
    hits = [
        Bar(x - slot / 2, 0, slot, plot_h, "#ffffff", opacity=0.0, title=f"{when}: {label} {v:.4g}")
        for x, (when, v) in zip(xs, series, strict=True)
    ]
    lines, labels = [], [Label(0, 16, label, "start", 13, INK, "bold")]
    for fraction in (0.0, 0.5, 1.0):
        y = plot_top + plot_h - fraction * plot_h
        lines.append(Line(0, y, 100, y, GRID))
        value = peak * fraction
        if fraction:
            text = percent(value) if as_percent and peak <= 1 else f"{value:.3g}"
            labels.append(Label(0, y - 3, text, "start", 10, halo=True))
    if threshold is not None:
        y = plot_top + plot_h - threshold / peak * plot_h
        lines.append(Line(0, y, 100, y, DRIFT, 1.5, "6 4"))
        labels.append(Label(100, y - 4, f"threshold {threshold:g}", "end", 10, DRIFT, halo=True))
    labels.append(Label(0, height - 6, series[0][0], "start", 10))
    if n > 1:
        labels.append(Label(100, height - 6, series[-1][0], "end", 10))
    return FluidChart(
        height,
        f"{label} over the last {n} runs",
        plot_top,
        plot_h,
        paths=[Shape(path, colour, 2.0)],
        marks=marks,
        lines=lines,
        labels=labels,
        hits=hits,
    )


def chunk_timeline(chunks: Chunks, height: int = 170) -> FluidChart | None:
    """One bar per chunk of the batch, in time order: the share of its columns that drifted,
    vermillion when the chunk drifted, green when not, a grey stub when it was not tested."""
    groups = chunks.groups
    if not groups:
        return None
    plot_top, plot_h = 30.0, height - 30.0 - 24
    threshold = groups[0].threshold
    peak = nice_ceiling(max([g.share for g in groups] + [threshold, 0.05]))
    slot = PLOT_WIDTH / len(groups)
    gap = min(slot * 0.2, 6.0)
    bars, hits = [], []
    for index, group in enumerate(groups):
        x = index * slot
        if group.tested:
            share_h = max(group.share / peak * plot_h, 2.0)
            colour = DRIFT if group.detected else OK
            title = (
                f"{group.label}: {len(group.drifted_columns)} of {len(group.columns)} columns drifted "
                f"({group.rows:,} rows)"
            )
        else:
            share_h, colour = 2.0, GRID
            title = f"{group.label}: not tested, {group.reason} ({group.rows:,} rows)"
        bars.append(Bar(x + gap / 2, plot_h - share_h, slot - gap, share_h, colour, title=title))
        hits.append(Bar(x, 0, slot, plot_h, "#ffffff", opacity=0.0, title=title))
    label = "Share of columns drifted, per chunk"
    lines, labels = [], [Label(0, 16, label, "start", 13, INK, "bold")]
    for fraction in (0.5, 1.0):
        y = plot_top + plot_h - fraction * plot_h
        lines.append(Line(0, y, 100, y, GRID))
        labels.append(Label(0, y - 3, percent(peak * fraction), "start", 10, halo=True))
    y = plot_top + plot_h - threshold / peak * plot_h
    lines.append(Line(0, y, 100, y, DRIFT, 1.5, "6 4"))
    labels.append(Label(100, y - 4, f"threshold {threshold:g}", "end", 10, DRIFT, halo=True))
    labels.append(Label(0, height - 6, groups[0].label, "start", 10))
    if len(groups) > 1:
        labels.append(Label(100, height - 6, groups[-1].label, "end", 10))
    return FluidChart(
        height,
        f"share of drifted columns in each of the {len(groups)} chunks of the batch ({chunks.by})",
        plot_top,
        plot_h,
        bars=bars,
        lines=lines,
        labels=labels,
        hits=hits,
    )


def _y_axis(
    left: float, top: float, plot_w: float, plot_h: float, peak: float, as_percent: bool = True
) -> tuple[list[Line], list[Label]]:
    lines, labels = [], []
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h - fraction * plot_h
        lines.append(Line(left, y, left + plot_w, y, GRID))
        value = peak * fraction
        text = percent(value) if as_percent and peak <= 1 else f"{value:.3g}"
        labels.append(Label(left - 4, y + 4, text, "end", 10))
    return lines, labels


def nice_ceiling(value: float) -> float:
    """A round number at or above ``value`` for an axis top.

    >>> nice_ceiling(0.23), nice_ceiling(0.031), nice_ceiling(7)
    (0.25, 0.04, 8)
    """
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    base = 10**exponent
    for step in (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * base + 1e-12:
            result = step * base
            return round(result, max(0, -exponent + 2)) if exponent < 0 else result
    return 10 * base


def distribution_rows(distribution: Distribution | None) -> list[tuple[str, float, float, str]]:
    """Table rows for a categorical distribution: label (its hidden spaces shown,
    :func:`~churnops.report.formats.visible_spaces`), reference share, current share, status."""
    if distribution is None or distribution.kind != "categories":
        return []
    rows = []
    for name, ref, cur in zip(distribution.labels, distribution.reference, distribution.current, strict=True):
        status = "new in current" if ref == 0 and cur > 0 else "gone from current" if cur == 0 and ref > 0 else ""
        rows.append((visible_spaces(name), ref, cur, status))
    return rows
