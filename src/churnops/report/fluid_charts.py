"""Column-detail charts as wide as their box: histograms, a log-scale quantile view, category shares.

They are ``FluidChart``s (see ``charts``): shapes in a plot area stretched to the width, text at
its own size, so a chart fills a desktop and still reads on a 390 px phone - with no script and
no style attribute. Axis labels are spaced so that they do not collide on the narrowest plot
(``NARROWEST`` px); more labels that fit a wide plot (``WIDE`` px) are marked ``wide_only`` and
the stylesheet hides them on narrow screens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from statistics import median

from churnops.monitor.results import ColumnDrift, ColumnSummary
from churnops.report.charts import (
    CURRENT,
    GRID,
    INK,
    MUTED,
    PLOT_WIDTH,
    REFERENCE,
    Bar,
    FluidChart,
    Label,
    Line,
    Shape,
    nice_ceiling,
    percent,
)
from churnops.report.formats import ShareFormat, visible_spaces

NARROWEST = 300.0
"""px: the plot width at which axis labels must still not collide (a phone, less padding)."""
WIDE = 560.0
"""px: the plot width from which ``wide_only`` labels are shown (see report.css)."""
CHAR_PX = 6.3
"""Width of a character at font-size 11, for that spacing."""
OUTER, GAP = 55.0, 30.0
"""Plot units of an outer (overflow) bin and of the break between it and the equal bins."""
QUANTILE_KEYS = ("p01", "p05", "p25", "p50", "p75", "p95", "p99")


@dataclass(frozen=True)
class Tails:
    """The shares in the outer bins of a histogram, for the note under it."""

    below: tuple[float, float, float] | None
    """(edge, reference share, current share) of the bin below the equal bins."""
    above: tuple[float, float, float] | None
    integer: bool = False
    """Edges at half-integers: the tails start at whole numbers."""

    def where(self, side: str, fmt: Callable[[float | None], str]) -> str:
        """Which values an outer bin holds, in words.

        >>> Tails(None, (23.5, 0.1, 0.1), True).where("above", "{:.2f}".format)
        '24 or more'
        >>> Tails((3.0, 0.1, 0.1), None).where("below", "{:.1f}".format)
        'below 3.0'
        """
        edge = (self.below if side == "below" else self.above)[0]  # type: ignore[index]
        if self.integer:  # whole numbers, whatever the column's decimals
            return f"{edge - 0.5:,.0f} or less" if side == "below" else f"{edge + 0.5:,.0f} or more"
        return f"{side} {fmt(edge)}"


def nice_step(span: float, parts: int = 4) -> float:
    """A round step that cuts ``span`` into about ``parts`` pieces.

    >>> nice_step(550), nice_step(550, 5), nice_step(1.0), nice_step(37)
    (200.0, 100.0, 0.25, 10.0)
    """
    raw = span / parts
    base = 10.0 ** math.floor(math.log10(raw))
    return next((step * base for step in (1, 2, 2.5, 5, 10) if raw <= step * base * 1.2), 10 * base)


def _tick_text(value: float, step: float) -> str:
    """A tick with the decimals its step needs.

    >>> _tick_text(600.0, 100.0), _tick_text(0.75, 0.25), _tick_text(2e5, 5e4), _tick_text(4e11, 2e11)
    ('600', '0.75', '200,000', '4e+11')
    """
    if abs(value) >= 1e9 or step < 1e-3:  # as the tables switch to scientific notation
        return f"{value:.3g}"
    decimals = next(d for d in range(10) if abs(round(step, d) - step) <= step * 1e-9)
    return f"{value:,.{decimals}f}"


def compact(value: float) -> str:
    """A decade on a log axis.

    >>> compact(0), compact(100), compact(10_000), compact(1e6), compact(1e9)
    ('0', '100', '10k', '1M', '1G')
    """
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _fits(labels: list[Label], plot_px: float) -> list[Label]:
    """The labels, in order, that do not collide with one kept before them at this plot width."""
    kept: list[tuple[float, float]] = []
    out = []
    for label in labels:
        width = len(label.text) * CHAR_PX + 8
        start = label.x / 100 * plot_px - width * {"start": 0, "middle": 0.5, "end": 1}[label.anchor]
        if all(start + width <= a or start >= b for a, b in kept):
            kept.append((start, start + width))
            out.append(label)
    return out


def _spaced(ends: list[Label], ticks: list[Label]) -> list[Label]:
    """The end labels and the ticks that fit a narrow plot, then those that fit a wide one only.

    >>> ticks = [Label(x, 0, "100,000") for x in (10, 25, 40, 55, 70, 85)]
    >>> [(t.x, t.wide_only) for t in _spaced([], ticks)]
    [(10, False), (40, False), (70, False), (25, True), (55, True), (85, True)]
    """
    narrow = _fits(ends + ticks, NARROWEST)
    wide = _fits(ends + ticks, WIDE)
    return narrow + [replace(t, wide_only=True) for t in wide if t not in narrow]


def _y_grid(plot_top: float, plot_h: float, peak: float) -> tuple[list[Line], list[Label]]:
    lines, labels = [], []
    for fraction in (0.0, 0.5, 1.0):
        y = plot_top + plot_h - fraction * plot_h
        lines.append(Line(0, y, 100, y, GRID))
        if fraction:
            labels.append(Label(0, y - 3, percent(peak * fraction), "start", 10, halo=True))
    return lines, labels


def _outline(spans: list[tuple[float, float]], shares: list[float], peak: float, plot_h: float) -> str:
    """The current sample as a step outline, one sub-path per run of touching bins."""
    parts: list[str] = []
    previous_end = None
    for (a, b), share in zip(spans, shares, strict=True):
        y = plot_h - share / peak * plot_h
        if previous_end is None or abs(a - previous_end) > 1e-6:
            if previous_end is not None:
                parts.append(f"V{plot_h:.1f}")
            parts.append(f"M{a:.1f} {plot_h:.1f}")
        parts.append(f"V{y:.1f}H{b:.1f}")
        previous_end = b
    parts.append(f"V{plot_h:.1f}")
    return "".join(parts)


def _date_ticks(low: float, high: float) -> list[tuple[float, str]]:
    """January the first of round years between two dates stored as days since 1970."""
    first, last = 1970 + low / 365.25, 1970 + high / 365.25
    step = max(1, round(nice_step(max(last - first, 1.0))))
    ticks = []
    for year in range(math.ceil(first / step) * step, math.floor(last) + 1, step):
        if 1 <= year <= 9999:
            ticks.append(((date(year, 1, 1) - date(1970, 1, 1)).days, str(year)))
    return ticks


def histogram(
    column: ColumnDrift, fmt: Callable[[float | None], str], share: ShareFormat, is_date: bool = False
) -> tuple[FluidChart, Tails] | None:
    """Reference bars (filled blue) and the current outline (orange) on the distribution's bins.

    The axis runs from the smallest to the largest value of both samples, and its ends are
    labelled with them as the tables print them. Outer bins much wider than the rest hold a long
    tail: they are drawn narrow, after a dashed break, and their shares go in ``Tails``.
    """
    distribution = column.distribution
    if distribution is None or distribution.kind != "bins" or len(distribution.edges) < 2:
        return None
    edges, ref, cur = distribution.edges, distribution.reference, distribution.current
    n = len(edges) - 1
    widths = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    core_width = median(widths)
    below = n >= 3 and widths[0] > 1.5 * core_width
    above = n >= 3 and widths[-1] > 1.5 * core_width
    integer = all(abs(e) < 2**53 and float(e + 0.5).is_integer() for e in edges)
    tails = Tails(
        (edges[1], ref[0], cur[0]) if below else None,
        (edges[-2], ref[-1], cur[-1]) if above else None,
        integer,
    )
    first, last = (1 if below else 0), n - (2 if above else 1)
    x0, x1 = (OUTER + GAP if below else 0.0), (PLOT_WIDTH - OUTER - GAP if above else PLOT_WIDTH)
    core_low, core_high = edges[first], edges[last + 1]
    if not core_low < core_high:  # no width to draw on (edges that rounding made equal)
        return None

    def x(value: float) -> float:
        return x0 + (value - core_low) / (core_high - core_low) * (x1 - x0)

    spans = [(x(edges[i]), x(edges[i + 1])) for i in range(n)]
    if below:
        spans[0] = (0.0, OUTER)
    if above:
        spans[-1] = (PLOT_WIDTH - OUTER, PLOT_WIDTH)
    plot_top, plot_h = 16.0, 190.0
    peak = nice_ceiling(max(max(ref), max(cur), 1e-12))
    name = column.name
    bars, hits, marks = [], [], []
    for i, ((a, b), r, c) in enumerate(zip(spans, ref, cur, strict=True)):
        h = r / peak * plot_h
        gap = min(1.5, (b - a) / 4)  # bars apart, in plot units (about 1-2 px)
        bars.append(Bar(a + gap, plot_h - h, b - a - 2 * gap, h, REFERENCE, opacity=0.45))
        if below and i == 0:
            where = tails.where("below", fmt) + " (from the minimum)"
        elif above and i == n - 1:
            where = tails.where("above", fmt) + " (to the maximum)"
        elif is_date:
            where = f"{fmt(edges[i])} to {fmt(edges[i + 1])}"
        else:
            where = distribution.labels[i] if i < len(distribution.labels) else ""
        hits.append(
            Bar(
                a,
                0,
                b - a,
                plot_h,
                "#ffffff",
                opacity=0.0,
                title=f"{name} {where}: reference {share(r)}, current {share(c)}",
            )
        )
    for gap in ([OUTER + GAP / 2] if below else []) + ([PLOT_WIDTH - OUTER - GAP / 2] if above else []):
        marks.append(Line(gap, 0, gap, plot_h, MUTED, 1, "4 3"))
    lines, labels = _y_grid(plot_top, plot_h, peak)
    low = _pooled(column.reference, column.current, min)
    high = _pooled(column.reference, column.current, max)
    axis_y = plot_top + plot_h + 15
    low = edges[0] if low is None else low
    high = edges[-1] if high is None else high
    if low == high:  # one value: one bar, one label
        ends = [Label(50, axis_y, f"every value {fmt(low)}", "middle", 11, INK)]
    else:
        ends = [Label(0, axis_y, fmt(low), "start", 11, INK), Label(100, axis_y, fmt(high), "end", 11, INK)]
    if is_date:
        candidates = _date_ticks(core_low, core_high)
    elif 0 < core_high - core_low < math.inf:
        step = nice_step(core_high - core_low, 5)
        step = max(step, 1.0) if integer else step
        start = math.ceil(core_low / step) * step
        count = (core_high - start) / step
        # no ticks when the range defeats the arithmetic (steps lost in rounding far beyond 2**53)
        count = int(count) + 1 if math.isfinite(count) and count < 100 else 0
        candidates = [(start + k * step, "") for k in range(count)]
        candidates = [(v, _tick_text(v, step)) for v, _ in candidates]
    else:  # a span that overflows a float: the two ends only
        candidates = []
    ticks = [Label(x(v) / 10, axis_y, text, "middle", 10) for v, text in candidates if core_low < v < core_high]
    ticks = ticks if low != high else []
    axis = _spaced(ends, ticks)
    labels += axis
    for tick in axis[len(ends) :]:
        if not tick.wide_only:
            lines.append(Line(tick.x, plot_top + plot_h, tick.x, plot_top + plot_h + 4, MUTED))
    title = f"Histogram of {name} over its full range: reference (blue bars) and current (orange outline)"
    path = Shape(_outline(spans, cur, peak, plot_h), CURRENT, 2.0)
    return FluidChart(int(axis_y + 6), title, plot_top, plot_h, bars, [path], marks, lines, labels, hits), tails


def _pooled(reference: ColumnSummary, current: ColumnSummary, pick: Callable[..., float]) -> float | None:
    values = [
        v for v in ((reference.min, current.min) if pick is min else (reference.max, current.max)) if v is not None
    ]
    return pick(values) if values else None


def skewed(column: ColumnDrift) -> bool:
    """Whether the linear histogram crushes the column against zero: non-negative values over at
    least two decades, with a long right tail (p99 more than three times as far above the median
    as p01 is below it) in either sample - incomes, balances, amounts with a mass of zeros."""
    if column.column_type != "numerical":
        return False
    low = _pooled(column.reference, column.current, min)
    high = _pooled(column.reference, column.current, max)
    if low is None or high is None or low < 0 or math.log10(1 + high) - math.log10(1 + low) < 2:
        return False
    for summary in (column.reference, column.current):
        q = summary.quantiles
        if all(q.get(k) is not None for k in QUANTILE_KEYS) and q["p99"] - q["p50"] > 3 * (q["p50"] - q["p01"]):
            return True
    return False


def quantile_view(column: ColumnDrift, fmt: Callable[[float | None], str]) -> FluidChart | None:
    """Both samples' quantiles on a log scale (``log10(1 + x)``), for skewed columns.

    Per sample: a box from p25 to p75, a band from p05 to p95, a line from p01 to p99, a bar at
    the median and ticks at the minimum and maximum; the axis runs from the minimum to the
    maximum of both samples.
    """
    if not skewed(column):
        return None
    summaries = (("reference", column.reference, REFERENCE), ("current", column.current, CURRENT))
    if any(
        s.min is None or s.max is None or any(s.quantiles.get(k) is None for k in QUANTILE_KEYS)
        for _, s, _ in summaries
    ):
        return None
    low = min(s.min for _, s, _ in summaries)
    high = max(s.max for _, s, _ in summaries)
    log_low, log_high = math.log10(1 + low), math.log10(1 + high)

    def x(value: float) -> float:
        return (math.log10(1 + max(value, low)) - log_low) / (log_high - log_low) * PLOT_WIDTH

    row, plot_top = 44.0, 6.0
    plot_h = 2 * row
    bars, marks, labels, hits, lines = [], [], [], [], []
    for i, (name, s, colour) in enumerate(summaries):
        q = s.quantiles
        top = i * row
        labels.append(Label(0, plot_top + top + 11, name, "start", 11, INK, halo=True))
        middle = top + 27
        marks.append(Line(x(s.min), middle - 5, x(s.min), middle + 5, MUTED, 1.5))
        marks.append(Line(x(s.max), middle - 5, x(s.max), middle + 5, MUTED, 1.5))
        marks.append(Line(x(q["p01"]), middle, x(q["p99"]), middle, colour, 1.5))
        bars.append(Bar(x(q["p05"]), middle - 4, x(q["p95"]) - x(q["p05"]), 8, colour, opacity=0.35))
        if name == "reference":
            bars.append(
                Bar(x(q["p25"]), middle - 9, x(q["p75"]) - x(q["p25"]), 18, colour, "#ffffff", 0.7, stroke_width=1)
            )
        else:
            bars.append(Bar(x(q["p25"]), middle - 9, x(q["p75"]) - x(q["p25"]), 18, "#ffffff", colour, stroke_width=2))
        marks.append(Line(x(q["p50"]), middle - 11, x(q["p50"]), middle + 11, INK, 2.5))
        tip = ", ".join(f"{k} {fmt(q[k])}" for k in QUANTILE_KEYS)
        hits.append(
            Bar(
                0,
                top,
                PLOT_WIDTH,
                row,
                "#ffffff",
                opacity=0.0,
                title=f"{column.name}, {name}: min {fmt(s.min)}, {tip}, max {fmt(s.max)}",
            )
        )
    axis_y = plot_top + plot_h + 15
    ends = [Label(0, axis_y, fmt(low), "start", 11, INK), Label(100, axis_y, fmt(high), "end", 11, INK)]
    ticks = []
    decade = 0
    while 10**decade <= high:
        value = 0.0 if decade == 0 else float(10**decade)
        for v in [0.0, 1.0] if decade == 0 else [value]:
            if low < v < high:
                position = x(v) / 10
                ticks.append(Label(position, axis_y, compact(v), "middle", 10))
                lines.append(Line(position, plot_top, position, plot_top + plot_h, GRID))
        decade += 1
    lines.append(Line(0, plot_top + plot_h, 100, plot_top + plot_h, GRID))
    labels += _spaced(ends, ticks)
    title = f"Quantiles of {column.name} on a log scale: reference (blue) and current (orange)"
    return FluidChart(int(axis_y + 6), title, plot_top, plot_h, bars, [], marks, lines, labels, hits)


def category_bars(column: ColumnDrift, share: ShareFormat) -> FluidChart | None:
    """Per category: its name and shares on one line, the reference (filled) and current
    (outlined) bars under it; new and vanished categories are starred."""
    distribution = column.distribution
    if distribution is None or distribution.kind != "categories":
        return None
    row = 30.0
    peak = nice_ceiling(max(max(distribution.reference), max(distribution.current), 1e-12))
    bars, labels, hits = [], [], []
    for i, (name, ref, cur) in enumerate(
        zip(distribution.labels, distribution.reference, distribution.current, strict=True)
    ):
        top = i * row
        status = " (new in current)" if ref == 0 and cur > 0 else " (gone from current)" if cur == 0 and ref > 0 else ""
        name = visible_spaces(name)
        shown = name if len(name) <= 28 else name[:27] + "…"
        labels.append(Label(0, top + 11, shown + (" ★" if status else ""), "start", 11, INK))
        labels.append(Label(100, top + 11, f"{share(ref)} → {share(cur)}", "end", 10))
        bars.append(Bar(0, top + 14, ref / peak * PLOT_WIDTH, 6, REFERENCE, opacity=0.85))
        bars.append(Bar(0, top + 21, cur / peak * PLOT_WIDTH, 6, "#ffffff", CURRENT, stroke_width=1.5))
        tip = f"{column.name} = {name}: reference {share(ref)}, current {share(cur)}{status}"
        hits.append(Bar(0, top, PLOT_WIDTH, row, "#ffffff", opacity=0.0, title=tip))
    height = len(distribution.labels) * row + 2
    title = f"Category shares of {column.name}: reference (blue) and current (orange outline); ★ new or gone"
    return FluidChart(int(height), title, 0.0, height, bars, [], [], [], labels, hits)
