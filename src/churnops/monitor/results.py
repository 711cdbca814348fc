"""Result objects of a monitoring run: frozen, plain data, each with ``to_dict()``.

They hold numbers and names only - never HTML, figures or widgets; the report layer turns
them into pages and files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = "1.3"
"""1.1 added the ``verdict`` section, 1.2 the calibrated verdict (``dataset_drift.verdict`` and
``calibrated``, each column's ``calibration``), ``segments`` and ``multivariate``, 1.3 ``chunks``.
Older documents stay readable: no field changed."""
SIGNALS = ("data", "target", "model", "quality")
FEW_ROWS = 30
"""Below this many rows a batch's drift tests say little (a p-value or a distance from a handful
of values): the batch is still monitored, with a warning, and what its tests find raises no alert."""
DEFAULT_TRIGGER_ON = ("data", "target", "model")


def clean_number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: NaN becomes null, infinities stay as the largest floats."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return math.copysign(1.7976931348623157e308, value)
    return value


@dataclass(frozen=True)
class ColumnSummary:
    """Descriptive statistics of one column in one dataset."""

    rows: int
    count: int
    missing: int
    infinite: int = 0
    unparsable: int = 0
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    n_categories: int | None = None
    shares: dict[str, float] = field(default_factory=dict)
    """Category shares (top categories; the rest under ``"(other)"``)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "count": self.count,
            "missing": self.missing,
            "missing_share": self.missing / self.rows if self.rows else 0.0,
            "infinite": self.infinite,
            "unparsable": self.unparsable,
        }
        if self.n_categories is None:
            out.update(
                mean=clean_number(self.mean),
                std=clean_number(self.std),
                min=clean_number(self.min),
                max=clean_number(self.max),
                quantiles={k: clean_number(v) for k, v in self.quantiles.items()},
            )
        else:
            out.update(n_categories=self.n_categories, shares=dict(self.shares))
        return out


@dataclass(frozen=True)
class Distribution:
    """Reference and current shares on shared bins (numerical) or categories, for charts."""

    kind: str
    """``"bins"`` or ``"categories"``."""
    labels: list[str]
    reference: list[float]
    current: list[float]
    edges: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "labels": list(self.labels),
            "reference": list(self.reference),
            "current": list(self.current),
        }
        if self.edges:
            out["edges"] = list(self.edges)
        return out


@dataclass(frozen=True)
class Calibration:
    """What the calibrated verdict adds to a column: a test whose false-alarm rate is known at
    the samples' sizes, its p-value adjusted across columns, and a size of the change."""

    test: str
    """``ks`` (numbers) or ``chi2`` (categories, and numbers with few distinct values)."""
    p_value: float
    effect: float
    effect_name: str
    """``normed_wasserstein`` (numbers: distance in reference standard deviations) or
    ``total_variation`` (categories: share of rows that changed category)."""
    evidently_drift_detected: bool
    """What Evidently's rule (the column's own test and threshold) said."""
    adjusted_p_value: float | None = None
    """Benjamini-Hochberg adjusted across the columns tested together (None before adjusting)."""
    fdr: float = 0.05
    min_effect: float = 0.02

    @property
    def significant(self) -> bool:
        return self.adjusted_p_value is not None and self.adjusted_p_value <= self.fdr

    @property
    def large_enough(self) -> bool:
        return not math.isnan(self.effect) and self.effect >= self.min_effect

    @property
    def drift_detected(self) -> bool:
        """Significant after adjustment and at least ``min_effect`` large."""
        return self.significant and self.large_enough

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "p_value": clean_number(self.p_value),
            "adjusted_p_value": clean_number(self.adjusted_p_value),
            "fdr": self.fdr,
            "effect": clean_number(self.effect),
            "effect_name": self.effect_name,
            "min_effect": self.min_effect,
            "significant": self.significant,
            "large_enough": self.large_enough,
            "evidently_drift_detected": self.evidently_drift_detected,
        }


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict of one column."""

    name: str
    role: str
    column_type: str
    test: str
    kind: str
    statistic: float
    p_value: float | None
    threshold: float
    drift_detected: bool
    drift_score: float
    reference: ColumnSummary
    current: ColumnSummary
    distribution: Distribution | None = None
    type_source: str = "inferred"
    note: str | None = None
    calibration: Calibration | None = None
    """Set with ``[drift] verdict = "calibrated"``: ``drift_detected`` is then its decision."""

    @property
    def severity(self) -> float:
        """How far past its threshold the column is (1 = on the threshold, > 1 = drifted).

        Distances: ``statistic / threshold``; p-values: ``log(p) / log(threshold)``, so that
        a smaller p ranks higher. Used to sort columns in reports.

        >>> ColumnDrift("x", "feature", "numerical", "wasserstein", "distance", 0.25, None, 0.125,
        ...             True, 0.25, ColumnSummary(1, 1, 0), ColumnSummary(1, 1, 0)).severity
        2.0
        """
        if math.isnan(self.statistic) and self.p_value is None:
            return math.inf if self.drift_detected else 0.0
        if self.kind == "p_value" and self.p_value is not None:
            if self.p_value <= 0:
                return math.inf
            if self.threshold <= 0 or self.threshold >= 1:
                return 1.0 - self.p_value
            return math.log(self.p_value) / math.log(self.threshold)
        if self.threshold <= 0:
            return math.inf if self.statistic > 0 else 0.0
        return self.statistic / self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.column_type,
            "role": self.role,
            "type_source": self.type_source,
            "test": self.test,
            "kind": self.kind,
            "statistic": clean_number(self.statistic),
            "p_value": clean_number(self.p_value),
            "threshold": self.threshold,
            "drift_score": clean_number(self.drift_score),
            "drift_detected": self.drift_detected,
            "reference": self.reference.to_dict(),
            "current": self.current.to_dict(),
            "distribution": self.distribution.to_dict() if self.distribution else None,
            "note": self.note,
            **({"calibration": self.calibration.to_dict()} if self.calibration is not None else {}),
        }


@dataclass(frozen=True)
class DatasetDrift:
    """Share of drifted feature columns and the verdicts built on it."""

    score: float
    threshold: float
    detected: bool
    drifted_columns: list[str]
    n_columns: int
    evidently_drift_share: float
    evidently_detected: bool
    verdict: str = "evidently"
    """How columns were decided: ``evidently`` (each test against its threshold) or ``calibrated``."""
    fdr: float | None = None
    min_effect: float | None = None
    expected_false_alarm_rate: float | None = None
    """Calibrated verdict: the chance that this run's rule raises data drift when nothing drifted
    (independent columns; an upper bound, as the effect floor only removes alarms)."""
    any_finding_false_alarm_rate: float | None = None
    """With time chunks or multivariate detectors: the chance that the run raises any data finding
    (data drift, a segment's, a chunk's, a detector's) when nothing drifted (each family
    independent of the others; an upper bound)."""

    def to_dict(self) -> dict[str, Any]:
        out = self._base()
        out["verdict"] = self.verdict
        if self.verdict == "calibrated":
            out["calibrated"] = {
                "fdr": self.fdr,
                "min_effect": self.min_effect,
                "expected_false_alarm_rate": self.expected_false_alarm_rate,
            }
            if self.any_finding_false_alarm_rate is not None:
                out["calibrated"]["any_finding_false_alarm_rate"] = self.any_finding_false_alarm_rate
        return out

    def _base(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "detected": self.detected,
            "drifted_columns": list(self.drifted_columns),
            "n_drifted": len(self.drifted_columns),
            "n_columns": self.n_columns,
            "evidently_share_rule": {
                "drift_share": self.evidently_drift_share,
                "detected": self.evidently_detected,
            },
        }


@dataclass(frozen=True)
class TargetDrift:
    """Change of the label (churn rate) between reference and current."""

    column: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drift_detected: bool
    positive_label: str | None = None
    reference_rate: float | None = None
    current_rate: float | None = None
    difference: float | None = None
    ci95: tuple[float, float] | None = None
    note: str | None = None

    @classmethod
    def not_compared(cls, column: str, note: str) -> TargetDrift:
        """A target that is not compared, and why (``note``): no test, a NaN statistic."""
        return cls(column, "none", float("nan"), None, 0.0, False, note=note)

    @property
    def rate_name(self) -> str:
        """How its rate is named: the column, or ``column = value`` when the value counted is not
        1 or true (``status = churned``)."""
        label = self.positive_label
        if label is None or label.strip().lower() in ("1", "true"):
            return self.column
        return f"{self.column} = {label}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "test": self.test,
            "statistic": clean_number(self.statistic),
            "p_value": clean_number(self.p_value),
            "threshold": self.threshold,
            "drift_detected": self.drift_detected,
            "positive_label": self.positive_label,
            "reference_rate": self.reference_rate,
            "current_rate": self.current_rate,
            "difference": self.difference,
            "ci95": list(self.ci95) if self.ci95 else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class QualityCheck:
    """One failed or suspicious quality check."""

    check: str
    severity: str
    """``"error"`` (counted in the score) or ``"warning"`` (reported only)."""
    message: str
    column: str | None = None
    count: int = 0
    share: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "column": self.column,
            "count": self.count,
            "share": self.share,
            "message": self.message,
        }


@dataclass(frozen=True)
class DataQuality:
    """Data quality of the current batch."""

    score: float
    threshold: float
    passed: bool
    cells: int
    failed_cells: int
    duplicated_rows: int
    duplicated_ids: int
    checks: list[QualityCheck]
    duplicated_rows_estimated: bool = False

    @property
    def failure(self) -> str:
        """Why the check failed, in a few words ("" when it passed): the score below its threshold,
        or columns mostly missing or unusable (a failure whatever the score)."""
        if self.passed:
            return ""
        if self.score < self.threshold:
            return f"below {self.threshold:g}"
        gone = [c.column or "?" for c in self.checks if c.check == "mostly_unusable"]
        more = f" and {len(gone) - 5} more" if len(gone) > 5 else ""
        return f"{', '.join(gone[:5])}{more} mostly missing or unusable" if gone else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "passed": self.passed,
            "cells": self.cells,
            "failed_cells": self.failed_cells,
            "duplicated_rows": self.duplicated_rows,
            "duplicated_ids": self.duplicated_ids,
            "duplicated_rows_estimated": self.duplicated_rows_estimated,
            "checks": [check.to_dict() for check in self.checks],
        }


@dataclass(frozen=True)
class SegmentDrift:
    """The columns of one segment (the rows holding one value of a ``drift.segments`` column)."""

    column: str
    value: str
    reference_rows: int
    current_rows: int
    columns: list[ColumnDrift]
    threshold: float
    """The share of drifted columns above which the segment drifted (``thresholds.dataset_drift``)."""
    reason: str | None = None
    """Why the segment was not tested (too few rows, not in the reference or in the batch)."""

    @property
    def tested(self) -> bool:
        return self.reason is None

    @property
    def drifted_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.drift_detected]

    @property
    def share(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def detected(self) -> bool:
        return self.tested and bool(self.columns) and self.share > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "value": self.value,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "tested": self.tested,
            "reason": self.reason,
            "n_columns": len(self.columns),
            "drifted_columns": self.drifted_columns,
            "share": self.share,
            "detected": self.detected,
            "columns": {c.name: _compact(c) for c in self.columns},
        }


def _compact(column: ColumnDrift) -> dict[str, Any]:
    """A column's test inside a segment: the verdict and its numbers, without the summaries."""
    out: dict[str, Any] = {
        "test": column.test,
        "statistic": clean_number(column.statistic),
        "p_value": clean_number(column.p_value),
        "threshold": column.threshold,
        "drift_detected": column.drift_detected,
    }
    if column.calibration is not None:
        out["calibration"] = column.calibration.to_dict()
    return out


@dataclass(frozen=True)
class Segments:
    """Every segment of a run (``drift.segments``)."""

    columns: list[str]
    min_rows: int
    groups: list[SegmentDrift]

    @property
    def detected(self) -> list[SegmentDrift]:
        return [g for g in self.groups if g.detected]

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "min_rows": self.min_rows,
            "n_tested": sum(1 for g in self.groups if g.tested),
            "detected": [{"column": g.column, "value": g.value} for g in self.detected],
            "groups": [g.to_dict() for g in self.groups],
        }


@dataclass(frozen=True)
class ChunkDrift:
    """The columns of one chunk of the batch (a period of its time column, or a run of rows)."""

    label: str
    """``2024-01-29`` (the period's start) or ``rows 1-5,000``."""
    start: str
    """First instant of the period (ISO 8601), or the first row's number (from 1)."""
    end: str
    """First instant after the period, or the last row's number."""
    rows: int
    columns: list[ColumnDrift]
    threshold: float
    """The share of drifted columns above which the chunk drifted (``thresholds.dataset_drift``)."""
    reason: str | None = None
    """Why the chunk was not tested (too few rows)."""

    @property
    def tested(self) -> bool:
        return self.reason is None

    @property
    def drifted_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.drift_detected]

    @property
    def share(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def detected(self) -> bool:
        return self.tested and bool(self.columns) and self.share > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            "tested": self.tested,
            "reason": self.reason,
            "n_columns": len(self.columns),
            "drifted_columns": self.drifted_columns,
            "share": self.share,
            "detected": self.detected,
            "columns": {c.name: _compact(c) for c in self.columns},
        }


@dataclass(frozen=True)
class Chunks:
    """The batch cut into chunks, each compared with the whole reference (``drift.chunk_by``)."""

    by: str
    """``period:1w`` or ``size:5000``."""
    time_column: str | None
    min_rows: int
    groups: list[ChunkDrift]
    unplaced_rows: int = 0
    """Rows with no usable time (missing or unreadable): in no chunk."""

    @property
    def detected(self) -> list[ChunkDrift]:
        return [g for g in self.groups if g.detected]

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "time_column": self.time_column,
            "min_rows": self.min_rows,
            "unplaced_rows": self.unplaced_rows,
            "n_tested": sum(1 for g in self.groups if g.tested),
            "detected": [g.label for g in self.detected],
            "groups": [g.to_dict() for g in self.groups],
        }


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset came from."""

    path: str | None
    rows: int
    sha256: str | None = None
    row_range: tuple[int, int] | None = None
    columns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "columns": self.columns,
            "sha256": self.sha256,
            "row_range": list(self.row_range) if self.row_range else None,
        }


@dataclass(frozen=True)
class SkippedColumn:
    """A column present in the data but not tested for drift, and why."""

    name: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reason": self.reason}


@dataclass(frozen=True)
class Reason:
    """One finding of a run."""

    signal: str
    """``data``, ``target``, ``model`` or ``quality``."""
    kind: str
    """What was found: ``data``, ``columns`` (columns drifted, too few for the data drift rule:
    always a warning), ``target``, ``model decay``, ``model unchecked``, ``prediction``,
    ``quality``..."""
    severity: str
    """``alert`` (its signal is in ``trigger_on``: raises the trigger) or ``warning``."""
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"signal": self.signal, "kind": self.kind, "severity": self.severity, "message": self.message}


@dataclass(frozen=True)
class Verdict:
    """The run's verdict: ``alert`` (trigger raised), ``warning`` or ``ok``."""

    status: str
    trigger: bool
    headline: str
    reasons: list[Reason] = field(default_factory=list)
    trigger_on: list[str] = field(default_factory=lambda: list(DEFAULT_TRIGGER_ON))

    @property
    def alerts(self) -> list[Reason]:
        return [r for r in self.reasons if r.severity == "alert"]

    @property
    def warnings(self) -> list[Reason]:
        return [r for r in self.reasons if r.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "trigger": self.trigger,
            "headline": self.headline,
            "trigger_on": list(self.trigger_on),
            "reasons": [r.to_dict() for r in self.reasons],
        }


@dataclass(frozen=True)
class MonitoringResult:
    """Everything one monitoring run found."""

    run_id: str
    created_at: str
    engine: str
    reference: DatasetInfo
    current: DatasetInfo
    dataset_drift: DatasetDrift
    columns: list[ColumnDrift]
    target_drift: TargetDrift | None
    prediction_drift: ColumnDrift | None
    data_quality: DataQuality
    skipped: list[SkippedColumn]
    settings: dict[str, Any]
    timings: dict[str, float]
    model: dict[str, Any] | None = None
    """The champion model's view of the batch (prediction drift, performance), when there is one."""
    mode: dict[str, Any] | None = None
    """Exact or streaming per dataset, and which columns the streaming summaries approximate."""
    verdict: Verdict | None = None
    """What the run found and whether it raises the trigger (:func:`churnops.monitor.verdict.decide`)."""
    segments: Segments | None = None
    """The columns tested inside each segment, when ``drift.segments`` names columns."""
    multivariate: Any = None
    """:class:`churnops.monitor.multivariate.Multivariate` with ``drift.multivariate``."""
    chunks: Chunks | None = None
    """The batch's chunks, each compared with the reference, with ``drift.chunk_by``."""

    def column(self, name: str) -> ColumnDrift:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "engine": self.engine,
            "reference": self.reference.to_dict(),
            "current": self.current.to_dict(),
            "dataset_drift": self.dataset_drift.to_dict(),
            "columns": {column.name: column.to_dict() for column in self.columns},
            "target_drift": self.target_drift.to_dict() if self.target_drift else None,
            "prediction_drift": self.prediction_drift.to_dict() if self.prediction_drift else None,
            "data_quality": self.data_quality.to_dict(),
            "skipped_columns": [s.to_dict() for s in self.skipped],
            "settings": dict(self.settings),
            "timings": dict(self.timings),
            "model": self.model,
            "mode": self.mode or {"reference": "exact", "current": "exact", "approximate_columns": []},
            "verdict": self.verdict.to_dict() if self.verdict else None,
            **({"segments": self.segments.to_dict()} if self.segments is not None else {}),
            **({"multivariate": self.multivariate.to_dict()} if self.multivariate is not None else {}),
            **({"chunks": self.chunks.to_dict()} if self.chunks is not None else {}),
        }


def example_result(drifted: int = 1, columns: int = 3) -> MonitoringResult:
    """A small result with ``drifted`` of ``columns`` numerical columns drifted (docs and tests)."""
    summary = ColumnSummary(100, 100, 0)
    names = [f"c{i}" for i in range(columns)]
    drifts = [
        ColumnDrift(
            n,
            "feature",
            "numerical",
            "wasserstein",
            "distance",
            0.5 if i < drifted else 0.01,
            None,
            0.1,
            i < drifted,
            0.5 if i < drifted else 0.01,
            summary,
            summary,
        )
        for i, n in enumerate(names)
    ]
    share = drifted / columns if columns else 0.0
    return MonitoringResult(
        run_id="example",
        created_at="2026-01-01T00:00:00.000+00:00",
        engine="native",
        reference=DatasetInfo(None, 100),
        current=DatasetInfo(None, 100),
        dataset_drift=DatasetDrift(share, 0.1, share > 0.1, names[:drifted], columns, 0.5, share >= 0.5),
        columns=drifts,
        target_drift=None,
        prediction_drift=None,
        data_quality=DataQuality(1.0, 0.95, True, 100 * columns, 0, 0, 0, []),
        skipped=[],
        settings={},
        timings={},
    )
