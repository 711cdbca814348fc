"""The HTML report: Jinja2 templates (autoescape on) rendered from a monitoring result."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from churnops.monitor.results import MonitoringResult


@dataclass(frozen=True)
class ReportContext:
    """Facts about the run that are not part of the result: paths and what happens next."""

    metrics_path: str
    trigger_path: str
    trigger_written: bool
    reproduce_command: str = "churnops monitor"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("churnops.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
    return env


def format_number(value: Any, digits: int = 4) -> str:
    """Numbers with sensible precision for people; None as an em dash.

    >>> format_number(0.000012345), format_number(1234567.891), format_number(None)
    ('1.234e-05', '1,234,568', '—')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    value = float(value)
    if value != value:
        return "—"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1e5:
        return f"{value:,.0f}"
    if magnitude < 1e-3:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def render_report(result: MonitoringResult, context: ReportContext) -> str:
    """The report page (it links ``report.css`` beside it)."""
    template = _environment().get_template("report.html.j2")
    columns = sorted(result.columns, key=lambda c: (not c.drift_detected, -c.severity))
    return template.render(result=result, columns=columns, context=context)


def report_stylesheet() -> str:
    """The stylesheet the report links (same-origin CSS passes Jenkins' CSP)."""
    return resources.files("churnops.report").joinpath("templates", "report.css").read_text("utf-8")
