"""The HTML report: Jinja2 templates (autoescape on) rendered from a monitoring result.

Two files by default - ``monitoring_report.html`` and the stylesheet ``report.css`` beside it -
because Jenkins serves published reports with ``Content-Security-Policy: sandbox;
default-src 'none'; img-src 'self'; style-src 'self';``: no script, no inline style, but a
same-origin stylesheet is fine. ``monitoring_report.standalone.html`` inlines the stylesheet
for e-mail attachments and opening from disk.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from statistics import median
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from churnops._version import __version__
from churnops.escape import has_controls, terminal
from churnops.monitor.results import ColumnDrift, MonitoringResult
from churnops.monitor.verdict import drifted_apart
from churnops.report import charts, fluid_charts, formats

MAX_DETAIL_CHARTS = 60
"""Only the most severe columns get full charts; a 1,000-column report stays small and fast."""
MAX_DETAIL_TABLES = 200
"""Beyond this many columns, a column's details shrink to one line (the JSON has everything)."""
MAX_OPEN_DETAILS = 8
"""Drifted columns open by default, up to this many; the rest stay collapsed."""


@dataclass(frozen=True)
class Trend:
    """A metric over past runs, oldest first, for the trends section."""

    label: str
    points: list[tuple[str, float]]
    threshold: float | None = None
    as_percent: bool = False


@dataclass(frozen=True)
class ReportContext:
    """Facts about the run that are not part of the result: paths and what happens next."""

    metrics_path: str
    trigger_path: str
    trigger_written: bool
    reproduce_command: str = "churnops monitor"
    next_steps: list[str] = field(default_factory=list)
    dvc_version: str | None = None
    trends: list[Trend] = field(default_factory=list)
    history_note: str | None = None


def format_number(value: Any, digits: int = 4) -> str:
    """Numbers with sensible precision for people; None as an em dash.

    >>> format_number(0.000012345), format_number(1234567.891), format_number(None), format_number(0.15238)
    ('1.23e-05', '1,234,568', '—', '0.1524')
    >>> format_number(80552.3), format_number(1234.56), format_number(0.1)
    ('80,552', '1,235', '0.1')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    value = float(value)
    if math.isnan(value):
        return "—"
    if math.isinf(value) or abs(value) >= 1e300:
        return "∞" if value > 0 else "-∞"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1e4:
        return f"{value:,.0f}"
    if magnitude < 1e-3:
        return f"{value:.{digits - 2}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    return f"{value:,.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:,.0f}"


def format_p_value(value: float | None) -> str:
    """A p-value; zero (below double precision) is shown as "< 1e-16".

    >>> format_p_value(0.0), format_p_value(0.0312), format_p_value(None)
    ('< 1e-16', '0.0312', '—')
    """
    if value is not None and value == 0:
        return "< 1e-16"
    return format_number(value)


def format_value(value: float | None, column_type: str) -> str:
    """A column value: dates (stored as days since 1970) as ISO dates, numbers as numbers.

    >>> format_value(20000.0, "datetime"), format_value(1234.5, "numerical")
    ('2024-10-04', '1,234.5')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if column_type == "datetime":
        try:
            return (date(1970, 1, 1) + timedelta(days=int(round(value)))).isoformat()
        except OverflowError:
            return format_number(value)
    if abs(value) >= 1000:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return format_number(value)


def _coordinate(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


STAT_ROWS = (("mean", "mean"), ("std", "std"), ("min", "min"))
"""The value statistics a numerical column's table shows before its quantiles (then max)."""
HISTOGRAM_CAPTION = "Histogram over the full range, minimum to maximum"
QUANTILE_CAPTION = (
    "The same on a log scale (log10 of 1 + value), for this skewed column: quantiles as a box from"
    " p25 to p75, a band from p05 to p95, a line from p01 to p99, a bar at the median"
    " and ticks at the minimum and maximum"
)


@dataclass(frozen=True)
class ColumnView:
    """One column as the report shows it: its charts and tables, every number already formatted."""

    anchor: str
    column: ColumnDrift
    sparkline: charts.Chart | None
    charts: list[tuple[str, charts.FluidChart, str | None]]
    """(caption, chart, note): the histogram or category shares, then log-scale quantiles if skewed."""
    chart_omitted: bool
    open: bool
    tables: bool
    stat_rows: list[tuple[str, str, str, str]]
    """(statistic, reference, current, change) of a numerical or datetime column."""
    category_rows: list[tuple[str, str, str, str, str]]
    """(category, reference share, current share, change in points, status)."""
    mean_shift: float | None
    std_ratio: float | None
    statistic: str
    p_value: str
    threshold: str


def _value_format(column: ColumnDrift) -> Callable[[float | None], str]:
    """How every value of a column is written - tables, axis ends, tooltips: ISO dates for dates,
    else one number format chosen from the column's scale."""
    if column.column_type == "datetime":
        return formats.iso_date
    values: list[float | None] = []
    for s in (column.reference, column.current):
        values += [s.mean, s.std, s.min, s.max, *s.quantiles.values()]
    magnitudes = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    spread = column.reference.std or column.current.std
    scale = min(median(magnitudes), spread) if magnitudes and spread else None  # not a mean near 0
    extremes = [column.reference.min, column.reference.max, column.current.min, column.current.max]
    whole = all(v is None or float(v).is_integer() for v in extremes)  # integer data: 2 digits do
    return formats.shared_format(values, significant=2 if whole else 3, scale=scale)


def _stat_rows(column: ColumnDrift, fmt: Callable[[float | None], str]) -> list[tuple[str, str, str, str]]:
    ref, cur = column.reference, column.current
    counts = formats.NumberFormat(0)
    rows = [
        (label, counts(a), counts(b), counts.signed(b - a))
        for label, a, b in (("count", ref.count, cur.count), ("missing", ref.missing, cur.missing))
    ]
    dates = column.column_type == "datetime"
    days = formats.shared_format([ref.std, cur.std], 3)

    def change(a: float | None, b: float | None) -> str:
        if a is None or b is None:
            return formats.DASH
        if dates:
            return f"{days.signed(b - a)} days"
        return fmt.signed(b - a)  # type: ignore[attr-defined]

    for label, key in (*STAT_ROWS, *((q, q) for q in ref.quantiles), ("max", "max")):
        a = getattr(ref, key) if key in ("mean", "std", "min", "max") else ref.quantiles.get(key)
        b = getattr(cur, key) if key in ("mean", "std", "min", "max") else cur.quantiles.get(key)
        if key == "std" and dates:
            rows.append((label, f"{days(a)} days", f"{days(b)} days", change(a, b)))
        else:
            rows.append((label, fmt(a), fmt(b), change(a, b)))
    return rows


def _tail_note(tails: fluid_charts.Tails, fmt: Callable[[float | None], str], share: formats.ShareFormat) -> str | None:
    parts = []
    for side, tail in (("below", tails.below), ("above", tails.above)):
        if tail:
            parts.append(f"{tails.where(side, fmt)}: reference {share(tail[1])}, current {share(tail[2])}")
    if not parts:
        return None
    return "Long tails are drawn after the dashed breaks, each as one bar: " + "; ".join(parts) + "."


def _column_view(
    index: int, column: ColumnDrift, with_chart: bool, open_: bool, tables: bool, cells: tuple[str, str, str]
) -> ColumnView:
    fmt = _value_format(column)
    distribution = column.distribution
    share = formats.share_format(
        [*(distribution.reference if distribution else []), *(distribution.current if distribution else [])]
    )
    views: list[tuple[str, charts.FluidChart, str | None]] = []
    if with_chart and distribution is not None:
        if distribution.kind == "categories":
            bars = fluid_charts.category_bars(column, share)
            if bars:
                views.append(("Share of rows per category", bars, None))
        else:
            drawn = fluid_charts.histogram(column, fmt, share, is_date=column.column_type == "datetime")
            if drawn:
                chart, tails = drawn
                views.append((HISTOGRAM_CAPTION, chart, _tail_note(tails, fmt, share)))
            quantiles = fluid_charts.quantile_view(column, fmt)
            if quantiles:
                views.append((QUANTILE_CAPTION, quantiles, None))
    ref, cur = column.reference, column.current
    mean_shift = std_ratio = None
    if ref.mean is not None and cur.mean is not None and ref.std:
        mean_shift = (cur.mean - ref.mean) / ref.std
        std_ratio = (cur.std or 0.0) / ref.std
    category_rows = [
        (name, share(r), share(c), share.points(c - r), status)
        for name, r, c, status in charts.distribution_rows(distribution)
    ]
    numeric = column.column_type != "categorical" and tables
    return ColumnView(
        anchor=f"col-{index}",
        column=column,
        sparkline=charts.sparkline(column),
        charts=views,
        chart_omitted=not with_chart and distribution is not None,
        open=open_,
        tables=tables,
        stat_rows=_stat_rows(column, fmt) if numeric else [],
        category_rows=category_rows,
        mean_shift=mean_shift,
        std_ratio=std_ratio,
        statistic=cells[0],
        p_value=cells[1],
        threshold=cells[2],
    )


def column_views(result: MonitoringResult) -> list[ColumnView]:
    """Columns by severity: drifted first, then by how far past their threshold they are.

    The drift table's statistic, p-value and threshold columns each get one number format.
    """
    if result.dataset_drift.verdict == "calibrated":
        return _calibrated_views(result)
    ordered = sorted(result.columns, key=lambda c: (not c.drift_detected, -c.severity, c.name))
    statistic = formats.shared_format([c.statistic for c in ordered], significant=2)
    threshold = formats.shared_format([c.threshold for c in ordered], significant=1)
    return _views(
        ordered, [(statistic(c.statistic), formats.p_value_cell(c.p_value), threshold(c.threshold)) for c in ordered]
    )


def _calibrated_views(result: MonitoringResult) -> list[ColumnView]:
    """The calibrated verdict's table: drifted first, then by adjusted p-value and effect; the
    cells are the effect, the adjusted p-value and what Evidently's rule said."""

    def key(c: ColumnDrift) -> tuple[bool, float, float, str]:
        calibration = c.calibration
        if calibration is None:  # not testable: drifted by definition
            return (not c.drift_detected, -1.0, 0.0, c.name)
        adjusted = calibration.adjusted_p_value if calibration.adjusted_p_value is not None else 1.0
        return (not c.drift_detected, adjusted, -(calibration.effect or 0.0), c.name)

    ordered = sorted(result.columns, key=key)
    effect = formats.shared_format([c.calibration.effect if c.calibration else None for c in ordered], significant=2)
    cells = [
        (
            effect(c.calibration.effect if c.calibration else None),
            formats.p_value_cell(c.calibration.adjusted_p_value if c.calibration else None),
            ("drift" if c.calibration.evidently_drift_detected else "ok") if c.calibration else formats.DASH,
        )
        for c in ordered
    ]
    return _views(ordered, cells)


def _views(ordered: list[ColumnDrift], table_cells: list[tuple[str, str, str]]) -> list[ColumnView]:
    views = []
    for index, (column, cells) in enumerate(zip(ordered, table_cells, strict=True)):
        views.append(
            _column_view(
                index,
                column,
                index < MAX_DETAIL_CHARTS,
                column.drift_detected and index < MAX_OPEN_DETAILS,
                index < MAX_DETAIL_TABLES,
                cells,
            )
        )
    return views


@dataclass(frozen=True)
class SegmentMatrix:
    """The "Where it drifted" table: one row per tested segment, one cell per column."""

    columns: list[str]
    rows: list[tuple[str, str, str, list[tuple[str, bool]], bool]]
    """(segment, reference rows, batch rows, cells (number, drifted), segment drifted)."""
    untested: list[tuple[str, str]]
    """(segment, why it was not tested)."""
    measure: str
    """What the cells' numbers are."""


def segment_matrix(result: MonitoringResult) -> SegmentMatrix | None:
    """Segments x columns, or None without segments. Cells hold the effect (calibrated verdict)
    or the column's statistic (its p-value for p-value tests)."""
    segments = result.segments
    if segments is None:
        return None
    calibrated = result.dataset_drift.verdict == "calibrated"

    def value(column: ColumnDrift) -> float | None:
        if calibrated and column.calibration is not None:
            return column.calibration.effect
        return column.p_value if column.kind == "p_value" else column.statistic

    tested = [g for g in segments.groups if g.tested]
    present = {c.name for g in tested for c in g.columns}
    order = {c.name: i for i, c in enumerate(result.columns)}
    drifted = Counter(c.name for g in tested for c in g.columns if c.drift_detected)
    # columns that drifted in the most segments first (they are what the table is for)
    names = sorted(present, key=lambda name: (-drifted[name], order.get(name, len(order)), name))
    number = formats.shared_format([value(c) for g in tested for c in g.columns], significant=2)
    rows = []
    for group in tested:
        by_name = {c.name: c for c in group.columns}
        cells = [
            (number(value(by_name[name])), by_name[name].drift_detected) if name in by_name else ("", False)
            for name in names
        ]
        rows.append(
            (
                f"{group.column} = {group.value}",
                f"{group.reference_rows:,}",
                f"{group.current_rows:,}",
                cells,
                group.detected,
            )
        )
    untested = [(f"{g.column} = {g.value}", g.reason or "") for g in segments.groups if not g.tested]
    measure = "effect" if calibrated else "statistic (p-value for p-value tests)"
    return SegmentMatrix(names, rows, untested, measure)


def _visible_controls(value: Any) -> Any:
    """Every printed value with control characters and bidirectional overrides shown as
    ``\\xNN`` / ``\\uNNNN`` (data could otherwise reorder or hide text in the page)."""
    if isinstance(value, str) and has_controls(value):
        shown = terminal(str(value))
        return Markup(shown) if isinstance(value, Markup) else shown
    return value


ENVIRONMENT_OPTIONS: dict[str, Any] = {"trim_blocks": True, "lstrip_blocks": True}


def compiling_environment() -> Environment:
    """The environment that compiles the templates from their source."""
    env = Environment(
        loader=PackageLoader("churnops.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        finalize=_visible_controls,
        **ENVIRONMENT_OPTIONS,
    )
    env.filters["num"] = format_number
    env.filters["pval"] = format_p_value
    env.filters["value"] = format_value
    env.filters["pct"] = charts.percent
    env.filters["chance"] = charts.chance
    env.filters["c"] = _coordinate
    env.filters["breakable"] = formats.breakable
    env.filters["fixed4"] = formats.NumberFormat(4)
    env.filters["share1"] = formats.ShareFormat(1)
    return env


@lru_cache(maxsize=1)
def _environment() -> Environment:
    """One environment per process, loading the templates compiled ahead of time when they match
    the templates and this Jinja (:mod:`churnops.report.precompile`), else compiling them."""
    from jinja2 import ModuleLoader

    from churnops.report import precompile

    env = compiling_environment()
    if precompile.is_current(ENVIRONMENT_OPTIONS):
        env.loader = ModuleLoader(precompile.COMPILED)
    return env


def report_stylesheet() -> str:
    """The stylesheet the report links (same-origin CSS passes Jenkins' CSP)."""
    return resources.files("churnops.report").joinpath("templates", "report.css").read_text("utf-8")


STYLESHEET_LINK = '<link rel="stylesheet" href="report.css">'


def render_report(result: MonitoringResult, context: ReportContext, standalone: bool = False) -> str:
    """The report page; ``standalone`` inlines the stylesheet instead of linking ``report.css``."""
    linked = _render(result, context)
    return with_inline_stylesheet(linked) if standalone else linked


def render_reports(result: MonitoringResult, context: ReportContext) -> tuple[str, str]:
    """The report linking ``report.css`` and its standalone copy, from one rendering."""
    linked = _render(result, context)
    return linked, with_inline_stylesheet(linked)


def with_inline_stylesheet(page: str) -> str:
    """``page`` with the stylesheet link in its head replaced by the stylesheet itself."""
    head, separator, body = page.partition("</head>")
    if head.count(STYLESHEET_LINK) != 1 or not separator:  # pragma: no cover - the template has one
        raise AssertionError("the report template has lost its stylesheet link")
    return head.replace(STYLESHEET_LINK, f"<style>\n{report_stylesheet()}\n</style>") + separator + body


def render_ab_report(document: dict[str, Any]) -> str:
    """The A/B page of ``churnops ab report`` (links ``report.css``; no script)."""
    return _environment().get_template("ab_report.html.j2").render(document=document, version=__version__)


def _render(result: MonitoringResult, context: ReportContext) -> str:
    template = _environment().get_template("report.html.j2")
    drift = result.dataset_drift
    target = result.target_drift
    trend_charts = [
        charts.trend_chart(trend.points, trend.threshold, trend.label, as_percent=trend.as_percent)
        for trend in context.trends
        if trend.points
    ]
    return template.render(
        result=result,
        context=context,
        columns=column_views(result),
        apart=drifted_apart(result),
        segment_matrix=segment_matrix(result),
        chunk_chart=charts.chunk_timeline(result.chunks) if result.chunks is not None else None,
        gauge=charts.score_gauge(drift.score, drift.threshold, drift.detected),
        rate_chart=charts.rate_chart(target) if target is not None else None,
        trend_charts=[c for c in trend_charts if c is not None],
        quality_share=formats.share_format(c.share for c in result.data_quality.checks),
        errors=[c for c in result.data_quality.checks if c.severity == "error"],
        warnings=[c for c in result.data_quality.checks if c.severity == "warning"],
        version=__version__,
        max_charts=MAX_DETAIL_CHARTS,
        palette={"reference": charts.REFERENCE, "current": charts.CURRENT},
    )
