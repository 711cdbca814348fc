"""The native engine: compare a current batch with a reference profile."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone

import polars as pl

from churnops.errors import ConfigError, InputDataError
from churnops.monitor.drift import ColumnTestError, column_drift, dataset_drift
from churnops.monitor.prepare import CategoricalSample
from churnops.monitor.profile import ColumnProfile, ReferenceProfile, build_profile, coerce, sample_of
from churnops.monitor.quality import CurrentColumn, data_quality
from churnops.monitor.results import (
    ColumnDrift,
    DatasetInfo,
    MonitoringResult,
    SkippedColumn,
    TargetDrift,
)
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.summaries import summarize
from churnops.monitor.target import target_drift

LABEL_TYPES: dict[type, pl.DataType] = {
    str: pl.String(),
    bool: pl.Boolean(),
    int: pl.Int64(),
    float: pl.Float64(),
}


def new_run_id(now: datetime) -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def _coerce_current(profile: ColumnProfile, series: pl.Series) -> CurrentColumn:
    plan = profile.plan
    reference = profile.sample
    like = None
    if isinstance(reference, CategoricalSample) and reference.labels:
        like = LABEL_TYPES.get(type(reference.labels[0]))
    coerced = coerce(series, plan.column_type, like)
    return CurrentColumn(profile, coerced.series, coerced.unparsable, sample_of(coerced, plan.column_type))


def check_schema(profile: ReferenceProfile, current: pl.DataFrame) -> list[str]:
    """Columns only the current batch has; raise when monitored columns are missing from it."""
    needed = [name for name, column in profile.columns.items() if column.skip_reason is None]
    missing = [name for name in needed if name not in current.columns]
    extra = [name for name in current.columns if name not in profile.columns]
    if missing and len(missing) == len(needed):
        raise InputDataError(
            "the reference and current data have no monitored column in common "
            f"(reference: {', '.join(needed[:5])}{'...' if len(needed) > 5 else ''})"
        )
    if missing:
        hint = f"; the current data has unexpected column(s) {', '.join(extra)} - renamed?" if extra else ""
        raise InputDataError(f"current data lacks column(s) {', '.join(missing)}{hint}")
    return extra


def compare(
    profile: ReferenceProfile,
    current: pl.DataFrame,
    settings: MonitorSettings,
    reference_info: DatasetInfo | None = None,
    current_info: DatasetInfo | None = None,
    engine: str = "native",
) -> MonitoringResult:
    """Drift, target drift and data quality of ``current`` against a reference profile.

    Raises
    ------
    InputDataError
        When the current batch lacks monitored columns.
    ConfigError
        When a configured test does not fit a column.
    """
    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    extra = check_schema(profile, current)
    current_columns: list[CurrentColumn] = []
    skipped: list[SkippedColumn] = []
    for name, column in profile.columns.items():
        if column.skip_reason is not None:
            skipped.append(SkippedColumn(name, column.skip_reason))
            continue
        current_columns.append(_coerce_current(column, current[name]))
    prepared = time.perf_counter()

    features: list[ColumnDrift] = []
    target: TargetDrift | None = None
    prediction: ColumnDrift | None = None
    for item in current_columns:
        plan = item.profile.plan
        reference = item.profile.sample
        assert reference is not None
        if plan.role == "target":
            target = target_drift(plan, reference, item.sample, settings)
            continue
        try:
            result = column_drift(plan, reference, item.sample, settings)
        except ColumnTestError as exc:
            if settings.method_for(plan.name, plan.test_type):
                raise ConfigError(f"drift method for column '{plan.name}': {exc}") from None
            result = _undecidable(item, str(exc))
        if plan.role == "prediction":
            prediction = result
        else:
            features.append(result)
    tested = time.perf_counter()

    quality = data_quality(current, current_columns, extra, settings)
    finished = time.perf_counter()
    return MonitoringResult(
        run_id=new_run_id(now),
        created_at=now.isoformat(timespec="seconds"),
        engine=engine,
        reference=reference_info or DatasetInfo(None, profile.rows, columns=len(profile.columns)),
        current=current_info or DatasetInfo(None, current.height, columns=current.width),
        dataset_drift=dataset_drift(features, settings),
        columns=features,
        target_drift=target,
        prediction_drift=prediction,
        data_quality=quality,
        skipped=skipped,
        settings=settings.to_dict(),
        timings={
            "prepare_current_s": prepared - started,
            "drift_s": tested - prepared,
            "quality_s": finished - tested,
        },
    )


def _undecidable(item: CurrentColumn, reason: str) -> ColumnDrift:
    """A column whose current data cannot be tested at all (e.g. every value missing).

    Such a column has certainly not kept its reference distribution: it counts as drifted.
    """
    plan = item.profile.plan
    reference = item.profile.sample
    assert reference is not None and item.profile.summary is not None
    return ColumnDrift(
        name=plan.name,
        role=plan.role,
        column_type=plan.column_type,
        test="none",
        kind="distance",
        statistic=float("nan"),
        p_value=None,
        threshold=0.0,
        drift_detected=True,
        drift_score=float("nan"),
        reference=item.profile.summary,
        current=summarize(item.sample),
        type_source="config" if plan.declared else "inferred",
        note=reason,
    )


def monitor_frames(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    settings: MonitorSettings,
    reference_info: DatasetInfo | None = None,
    current_info: DatasetInfo | None = None,
) -> MonitoringResult:
    """Profile ``reference`` and compare ``current`` with it (the exact in-memory path).

    Examples
    --------
    >>> ref = pl.DataFrame({"x": [float(i) for i in range(50)], "c": ["a", "b"] * 25})
    >>> cur = pl.DataFrame({"x": [float(i) + 40 for i in range(50)], "c": ["a", "b"] * 25})
    >>> settings = MonitorSettings(target=None)
    >>> result = monitor_frames(ref, cur, settings)
    >>> result.column("x").drift_detected, result.column("c").drift_detected
    (True, False)
    """
    started = time.perf_counter()
    profile = build_profile(reference, settings)
    profiled = time.perf_counter()
    result = compare(profile, current, settings, reference_info, current_info)
    timings = {"profile_reference_s": profiled - started, **result.timings}
    return _with_timings(result, timings)


def _with_timings(result: MonitoringResult, timings: dict[str, float]) -> MonitoringResult:
    return replace(result, timings=timings)
