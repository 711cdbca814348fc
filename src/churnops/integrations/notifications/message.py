"""What a notification says, built once from the metrics and rendered per channel."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from churnops.escape import one_line, safe_link


@dataclass(frozen=True)
class ColumnFact:
    name: str
    test: str
    value: str
    threshold: str


@dataclass(frozen=True)
class Notification:
    """The facts every channel shows, whatever its format."""

    status: str
    """``drift`` (an alert), ``warning``, ``ok`` or ``error`` (a pipeline stage failed)."""
    title: str
    verdict: str
    run_id: str | None = None
    created_at: str | None = None
    batch: str | None = None
    dataset_score: float | None = None
    threshold: float | None = None
    n_drifted: int = 0
    n_columns: int = 0
    top_columns: list[ColumnFact] = field(default_factory=list)
    quality_score: float | None = None
    quality_passed: bool | None = None
    target: str | None = None
    report: str | None = None
    metrics: str | None = None
    report_url: str | None = None
    build_url: str | None = None
    published: str | None = None
    """Where the run's report was uploaded (``[publish] url``), e.g. ``s3://bucket/churnops/RUN/...``."""
    errors: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    """What the run found, most severe first (alerts, then warnings)."""

    @property
    def link(self) -> str | None:
        """A web address to open, when there is a plain http(s) one."""
        for url in (self.report_url, self.build_url):
            if safe_link(url):
                return url
        return None

    def facts(self) -> list[tuple[str, str]]:
        """Label/value pairs shown by every channel."""
        rows = []
        if self.dataset_score is not None and self.threshold is not None:
            rows.append(("Dataset drift score", f"{self.dataset_score:.3f} (threshold {self.threshold:g})"))
            rows.append(("Drifted columns", f"{self.n_drifted} of {self.n_columns}"))
        if self.quality_score is not None:
            rows.append(("Data quality", f"{self.quality_score:.4f} ({'pass' if self.quality_passed else 'WARNING'})"))
        if self.target:
            rows.append(("Target", self.target))
        if self.batch:
            rows.append(("Batch", self.batch))
        if self.run_id:
            rows.append(("Run", self.run_id))
        if self.published:
            rows.append(("Published", self.published))
        return rows

    def text(self) -> str:
        """The plain-text body (e-mail alternative, file channel, dry runs)."""
        lines = [self.title, "", self.verdict, ""]
        if self.findings:
            lines += ["Findings:"] + [f"  - {f}" for f in self.findings] + [""]
        lines += [f"{label}: {value}" for label, value in self.facts()]
        if self.top_columns:
            lines += ["", "Most drifted columns:"]
            lines += [f"  - {c.name}: {c.test} {c.value} (threshold {c.threshold})" for c in self.top_columns]
        if self.errors:
            lines += ["", "Errors:"] + [f"  - {e}" for e in self.errors]
        lines.append("")
        if self.report:
            lines.append(f"Report: {self.report}")
        if self.metrics:
            lines.append(f"Metrics: {self.metrics}")
        if self.report_url:
            lines.append(f"Open: {self.report_url}")
        if self.build_url:
            lines.append(f"Build: {self.build_url}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ci_build_url(env: Mapping[str, str] | None = None) -> str | None:
    """The CI run's address: Jenkins' ``BUILD_URL``, or GitHub Actions' run page.

    >>> ci_build_url({"BUILD_URL": "https://ci/job/x/7/"})
    'https://ci/job/x/7/'
    >>> ci_build_url({"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "9"})
    'https://github.com/o/r/actions/runs/9'
    """
    env = os.environ if env is None else env
    if env.get("BUILD_URL"):
        return env["BUILD_URL"]
    keys = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    if all(env.get(k) for k in keys):
        return f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return None


def _value(column: Mapping[str, Any]) -> str:
    if column.get("kind") == "p_value":
        p = column.get("p_value")
        return "p<1e-16" if p == 0 else f"p={p:.3g}" if isinstance(p, float) else "p=n/a"
    statistic = column.get("statistic")
    return f"{statistic:.4g}" if isinstance(statistic, float) and math.isfinite(statistic) else "n/a"


def _severity(column: Mapping[str, Any]) -> float:
    threshold = column.get("threshold") or 0.0
    if column.get("kind") == "p_value":
        p = column.get("p_value")
        if p is None:
            return 0.0
        return math.inf if p <= 0 else math.log(p) / math.log(threshold) if 0 < threshold < 1 else 1 - p
    statistic = column.get("statistic")
    if statistic is None:
        return math.inf
    return statistic / threshold if threshold else math.inf


def _clean(value: Any) -> Any:
    """Data-derived text on one line with control characters made visible (every medium)."""
    if isinstance(value, str):
        return one_line(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _short(kind: str, metrics: Mapping[str, Any]) -> str:
    """A few words for a finding, for titles and subjects."""
    if kind == "data":
        drift = metrics["dataset_drift"]
        return f"data drift ({len(drift['drifted_columns'])} of {drift['n_columns']} columns)"
    if kind == "target":
        target = metrics.get("target_drift") or {}
        if target.get("reference_rate") is not None and target.get("current_rate") is not None:
            change = (target["current_rate"] - target["reference_rate"]) * 100
            return f"{target['column']} rate {change:+.1f} points"
        return "target drift"
    return {
        "model decay": "model decay",
        "model unchecked": "model not checked",
        "prediction": "prediction drift",
        "quality": "data quality below threshold",
    }.get(kind, kind)


def _without_password(url: str | None) -> str | None:
    """``url``, or None when it holds a credential - user info (``user:password@host``, written
    with or without ``//``) or a credential query parameter - which no message shows.

    >>> _without_password("https://ci.example/job/7/"), _without_password("https://u:pw@ci.example/job/7/")
    ('https://ci.example/job/7/', None)
    >>> _without_password("https:u:pw@ci.example/7"), _without_password("https://ci.example/7?access_key=k")
    (None, None)
    """
    from churnops.redact import url_credential

    return None if url is None or url_credential(url) else url


def build_notification(
    status: str,
    metrics: Mapping[str, Any] | None,
    errors: list[str] | None = None,
    top: int = 5,
    report_url: str | None = None,
    env: Mapping[str, str] | None = None,
    published: str | None = None,
) -> Notification:
    """The notification for ``status`` from a metrics document (``monitoring_metrics.json``).

    The title and first line come from the run's verdict (what it found, most severe first), so
    they never contradict the numbers below them. ``{run_id}`` in ``report_url`` is the run's id
    (a report published per run); without a run, such an address is left out.
    """
    errors = [one_line(e) for e in errors or []]
    build_url = ci_build_url(env)
    if report_url and "{run_id}" in report_url:
        run = (metrics or {}).get("run_id")
        report_url = report_url.replace("{run_id}", quote(str(run), safe="")) if run else None
    # never user:password@ in clear text (the HTML, Slack and Teams messages left such an address
    # out, the e-mail's text part and the JSON not)
    report_url, build_url = _without_password(report_url), _without_password(build_url)
    if metrics is None:
        return Notification(
            status=status,
            title="churnops: pipeline error" if status == "error" else f"churnops: {status}",
            verdict="The drift monitoring could not produce metrics." if status == "error" else "No metrics available.",
            errors=errors,
            report_url=report_url,
            build_url=build_url,
            published=_clean(published),
        )
    drift = metrics["dataset_drift"]
    columns = metrics.get("columns", {})
    drifted = sorted(
        ((name, c) for name, c in columns.items() if c.get("drift_detected")), key=lambda item: -_severity(item[1])
    )
    top_columns = [
        ColumnFact(one_line(name), one_line(c["test"]), _value(c), f"{c['threshold']:g}") for name, c in drifted[:top]
    ]
    target = metrics.get("target_drift") or {}
    target_text = None
    if target.get("reference_rate") is not None and target.get("current_rate") is not None:
        change = (target["current_rate"] - target["reference_rate"]) * 100
        target_text = (
            f"{target['column']} rate {target['reference_rate']:.1%} -> {target['current_rate']:.1%} "
            f"({change:+.1f} points, {'drift' if target['drift_detected'] else 'no drift'})"
        )
    quality = metrics.get("data_quality", {})
    outputs = metrics.get("outputs", {})
    batch = (metrics.get("current") or {}).get("path")
    batch_name = (os.path.basename(batch.rstrip("/")) or batch) if batch else "the current batch"
    verdict = metrics.get("verdict") or {}
    reasons = verdict.get("reasons") or []
    findings = [f"{r['message']}" + ("" if r["severity"] == "alert" else " (warning)") for r in reasons]
    headline = verdict.get("headline") or (
        f"dataset drift score {drift['score']:.3f}, threshold {drift['threshold']:g}: "
        + ("drift" if drift["detected"] else "no drift")
    )
    # a later stage that failed (DVC, publishing) is said beside the run's verdict, never instead
    # of it: "pipeline error" in the title hid the alert of a run whose versioning failed
    found_status = status
    if status == "error":
        found_status = "drift" if verdict.get("trigger") else "warning" if verdict.get("status") == "warning" else ""
    if found_status in ("drift", "warning"):
        severity, word = ("alert", "Alert") if found_status == "drift" else ("warning", "Warning")
        found = [r for r in reasons if r["severity"] == severity]
        labels = ", ".join(dict.fromkeys(_short(r["kind"], metrics) for r in found))
        title = f"{word} on {batch_name}: {labels}" if labels else f"{word} on {batch_name}"
        verdict_text = headline[:1].upper() + headline[1:] + "."
    elif status == "ok":
        title = f"No alert on {batch_name}"
        verdict_text = headline[:1].upper() + headline[1:] + "."
    else:
        title = f"churnops pipeline error on {batch_name}"
        verdict_text = "A pipeline stage failed; the monitoring results below are still valid."
    if (status == "error" and found_status) or (status != "error" and errors):  # (publishing: after the status)
        title += " - and a pipeline stage failed"
        verdict_text += " A pipeline stage failed; the monitoring results below are still valid."
    return Notification(
        status=status,
        title=one_line(title),
        verdict=one_line(verdict_text),
        run_id=_clean(metrics.get("run_id")),
        created_at=_clean(metrics.get("created_at")),
        batch=_clean(batch),
        dataset_score=float(drift["score"]),
        threshold=float(drift["threshold"]),
        n_drifted=len(drift["drifted_columns"]),
        n_columns=int(drift["n_columns"]),
        top_columns=top_columns,
        quality_score=quality.get("score"),
        quality_passed=quality.get("passed"),
        target=_clean(target_text),
        report=_clean(outputs.get("report")),
        metrics=_clean(outputs.get("metrics")),
        report_url=_clean(report_url),
        build_url=_clean(build_url),
        published=_clean(published),
        errors=errors,
        findings=_clean(findings),
    )
