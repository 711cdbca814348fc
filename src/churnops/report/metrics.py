"""The JSON metrics file and the trigger file: text rendered from a monitoring result."""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from churnops._version import __version__
from churnops.monitor.results import MonitoringResult

SCHEMA_RESOURCE = "monitoring_metrics.schema.json"


def metrics_schema() -> dict[str, Any]:
    """The JSON Schema of ``monitoring_metrics.json`` shipped with churnops."""
    text = resources.files("churnops.report").joinpath("schemas", SCHEMA_RESOURCE).read_text("utf-8")
    return json.loads(text)


def metrics_document(result: MonitoringResult, outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metrics document: the result's dictionary, the churnops version and output paths."""
    document = result.to_dict()
    document["churnops_version"] = __version__
    if outputs:
        document["outputs"] = outputs
    return document


def render_metrics_json(document: dict[str, Any]) -> str:
    """Pretty JSON with a final newline; refuses NaN, which JSON does not have."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render_trigger(result: MonitoringResult, report_path: str, metrics_path: str) -> str:
    """``trigger.txt``: what the run found (its verdict), then ``key: value`` lines tools can parse."""
    from churnops.escape import one_line

    drift = result.dataset_drift
    verdict = result.verdict
    alerts = verdict.alerts if verdict else []
    kinds = ", ".join(dict.fromkeys(r.kind for r in alerts)) or "data drift"
    lines = [f"ALERT: {kinds}", ""]
    lines += [f"- {one_line(r.message)}" for r in (verdict.reasons if verdict else [])]
    ranked = sorted((c for c in result.columns if c.drift_detected), key=lambda c: -c.severity)
    if ranked:
        lines += ["", f"{len(drift.drifted_columns)} of {drift.n_columns} monitored columns drifted:"]
    for column in ranked:
        if column.test == "none":  # nothing to test: every cell missing or unreadable
            lines.append(f"  - {one_line(column.name)}: not tested, no usable value in the batch")
            continue
        value = f"p={p_value_text(column.p_value)}" if column.kind == "p_value" else f"{column.statistic:.4g}"
        lines.append(f"  - {one_line(column.name)}: {column.test} {value} (threshold {column.threshold:g})")
    target = result.target_drift
    if target is not None and target.reference_rate is not None and target.current_rate is not None:
        lines.append(
            f"Target '{one_line(target.column)}': rate {target.reference_rate:.2%} -> {target.current_rate:.2%}"
            f" ({(target.current_rate - target.reference_rate) * 100:+.2f} points,"
            + (f" z={target.statistic:+.2f}," if math.isfinite(target.statistic) else "")
            + f" {'drift' if target.drift_detected else 'no drift'}, p={p_value_text(target.p_value)})"
        )
    lines += [
        f"Report: {one_line(report_path)}",
        "",
        f"time: {result.created_at}",
        f"run_id: {result.run_id}",
        f"verdict: {verdict.status if verdict else 'alert'}",
        f"alerts: {', '.join(r.kind for r in alerts)}",
        f"dataset_drift_score: {drift.score:.6f}",
        f"threshold: {drift.threshold}",
        f"drifted_columns: {', '.join(one_line(c) for c in drift.drifted_columns)}",
        f"data_quality_score: {result.data_quality.score:.6f}",
        f"current: {one_line(result.current.path)}",
        f"current_sha256: {result.current.sha256}",
        f"report: {one_line(report_path)}",
        f"metrics: {one_line(metrics_path)}",
    ]
    return "\n".join(lines) + "\n"


def p_value_text(value: float | None) -> str:
    """A p-value in plain text; zero means below double precision.

    >>> p_value_text(0.0), p_value_text(0.01234), p_value_text(None)
    ('<1e-16', '0.0123', 'n/a')
    """
    if value is None:
        return "n/a"
    return "<1e-16" if value == 0 else f"{value:.3g}"
