"""Prometheus metrics of the latest run: a textfile for node_exporter, or a push to a Pushgateway.

Names follow Prometheus conventions (``churnops_`` prefix, base units, ``_seconds`` for times);
:data:`METRIC_NAMES` lists every name, and the Grafana dashboard and alert rules use only these.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from churnops.errors import IntegrationError, MissingDependencyError

METRIC_NAMES = {
    "churnops_dataset_drift_score": "Share of drifted feature columns in the last run",
    "churnops_dataset_drift_threshold": "Dataset drift score above which the trigger is written",
    "churnops_dataset_drift_detected": "1 when the last run detected dataset drift",
    "churnops_drifted_columns": "Number of drifted feature columns in the last run",
    "churnops_monitored_columns": "Number of feature columns tested in the last run",
    "churnops_column_drift_statistic": "Drift statistic of a column (distance, or test statistic)",
    "churnops_column_drift_p_value": "p-value of a column's drift test (p-value tests only)",
    "churnops_column_drift_threshold": "Threshold of a column's drift test",
    "churnops_column_drift_detected": "1 when the column drifted",
    "churnops_data_quality_score": "Share of current cells passing every quality check",
    "churnops_data_quality_threshold": "Quality score below which the batch gets a warning",
    "churnops_target_rate": "Positive-label (churn) rate per dataset",
    "churnops_rows": "Rows per dataset",
    "churnops_last_run_timestamp_seconds": "Unix time of the last monitoring run",
    "churnops_model_roc_auc": "ROC-AUC of the champion model (realized with labels, or estimated)",
    "churnops_run_info": "Facts about the last run, as labels (value 1)",
    "churnops_alert": "1 when the last run's verdict raised the trigger (an alert), else 0",
    "churnops_finding": "Findings of the last run per signal (data, target, model, quality) and severity",
}


def _import() -> Any:
    try:
        import prometheus_client
    except ImportError:  # pragma: no cover - prometheus_client is a core dependency
        raise MissingDependencyError("prometheus_client", "all") from None
    return prometheus_client


def build_registry(metrics: dict[str, Any], labels: dict[str, str] | None = None) -> Any:
    """A prometheus_client registry holding the gauges of one metrics document."""
    from datetime import datetime

    prometheus = _import()
    registry = prometheus.CollectorRegistry()
    labels = dict(labels or {})
    common = sorted(labels)

    def gauge(name: str, extra: tuple[str, ...] = ()) -> Any:
        return prometheus.Gauge(name, METRIC_NAMES[name], [*common, *extra], registry=registry)

    def finite(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

    drift = metrics["dataset_drift"]
    gauge("churnops_dataset_drift_score").labels(**labels).set(drift["score"])
    gauge("churnops_dataset_drift_threshold").labels(**labels).set(drift["threshold"])
    gauge("churnops_dataset_drift_detected").labels(**labels).set(1 if drift["detected"] else 0)
    gauge("churnops_drifted_columns").labels(**labels).set(len(drift["drifted_columns"]))
    gauge("churnops_monitored_columns").labels(**labels).set(drift["n_columns"])
    statistic = gauge("churnops_column_drift_statistic", ("column", "test"))
    p_value = gauge("churnops_column_drift_p_value", ("column", "test"))
    threshold = gauge("churnops_column_drift_threshold", ("column", "test"))
    detected = gauge("churnops_column_drift_detected", ("column",))
    for name, column in metrics.get("columns", {}).items():
        keys = {**labels, "column": name, "test": column["test"]}
        if finite(column.get("statistic")):
            statistic.labels(**keys).set(column["statistic"])
        if finite(column.get("p_value")):
            p_value.labels(**keys).set(column["p_value"])
        threshold.labels(**keys).set(column["threshold"])
        detected.labels(**labels, column=name).set(1 if column["drift_detected"] else 0)
    quality = metrics.get("data_quality") or {}
    if finite(quality.get("score")):
        gauge("churnops_data_quality_score").labels(**labels).set(quality["score"])
        gauge("churnops_data_quality_threshold").labels(**labels).set(quality["threshold"])
    target = metrics.get("target_drift") or {}
    rate = gauge("churnops_target_rate", ("dataset",))
    for dataset in ("reference", "current"):
        if finite(target.get(f"{dataset}_rate")):
            rate.labels(**labels, dataset=dataset).set(target[f"{dataset}_rate"])
    rows = gauge("churnops_rows", ("dataset",))
    for dataset in ("reference", "current"):
        rows.labels(**labels, dataset=dataset).set(metrics[dataset]["rows"])
    when = datetime.fromisoformat(metrics["created_at"]).timestamp()
    gauge("churnops_last_run_timestamp_seconds").labels(**labels).set(when)
    model = metrics.get("model") or {}
    auc = gauge("churnops_model_roc_auc", ("kind",))
    for kind in ("realized", "estimated", "reference"):
        value = (model.get(kind) or {}).get("roc_auc")
        if finite(value):
            auc.labels(**labels, kind=kind).set(value)
    verdict = metrics.get("verdict") or {}
    if verdict:
        gauge("churnops_alert").labels(**labels).set(1 if verdict.get("trigger") else 0)
        findings = gauge("churnops_finding", ("signal", "severity"))
        signals, severities = ("data", "target", "model", "quality"), ("alert", "warning")
        counts: dict[tuple[str, str], int] = {(signal, severity): 0 for signal in signals for severity in severities}
        for reason in verdict.get("reasons", []):
            key = (reason.get("signal"), reason.get("severity"))
            if key in counts:
                counts[key] += 1
        for (signal, severity), count in counts.items():
            findings.labels(**labels, signal=signal, severity=severity).set(count)
    info = gauge("churnops_run_info", ("run_id", "engine", "version"))
    info.labels(
        **labels, run_id=metrics["run_id"], engine=metrics["engine"], version=metrics.get("churnops_version", "")
    ).set(1)
    return registry


def write_textfile(metrics: dict[str, Any], folder: Path, labels: dict[str, str] | None = None) -> Path:
    """``folder/churnops.prom`` in the text exposition format, written atomically (never through a
    link planted at its path or at a predictable temporary name)."""
    from churnops.data.files import atomic_write_bytes

    prometheus = _import()
    path = folder / "churnops.prom"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, prometheus.generate_latest(build_registry(metrics, labels)))
    except OSError as exc:
        raise IntegrationError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def push(
    metrics: dict[str, Any], url: str, job: str, labels: dict[str, str] | None = None, timeout: float = 10
) -> None:
    """Replace this job's metrics on a Pushgateway.

    The request goes through churnops' own client (:mod:`churnops.integrations.web`), not
    prometheus_client's: user info in ``url`` becomes a Basic header, a redirect is a failure
    (never followed with the credentials), and a failure says the status only - the Pushgateway's
    reason phrase can repeat the path and query it was sent."""
    from churnops.integrations import web
    from churnops.redact import redact

    prometheus = _import()

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes) -> Any:
        return lambda: web.send(url, method, data, dict(headers), timeout or 10)

    try:
        prometheus.push_to_gateway(
            url, job=job, registry=build_registry(metrics, labels), timeout=timeout, handler=handler
        )
    except web.HttpFailure as exc:
        raise IntegrationError(f"cannot push to the Pushgateway at {redact(url)}: {redact(exc)}") from None


def exposition(metrics: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """The text exposition format, for ``--print``."""
    return _import().generate_latest(build_registry(metrics, labels)).decode("utf-8")
