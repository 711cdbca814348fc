"""The native engine: compare a current batch with a reference profile."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timezone

import polars as pl

from churnops.errors import ConfigError
from churnops.monitor.batch import BatchTally, ColumnTally
from churnops.monitor.drift import (
    ColumnTestError,
    adjust_columns,
    column_drift,
    dataset_drift,
    with_any_finding_rate,
)
from churnops.monitor.multivariate import multivariate_drift, require_sklearn
from churnops.monitor.profile import ReferenceProfile, build_profile, require_tested
from churnops.monitor.quality import data_quality, file_format, labels_to_come
from churnops.monitor.results import (
    ColumnDrift,
    DatasetInfo,
    MonitoringResult,
    SegmentDrift,
    Segments,
    SkippedColumn,
    TargetDrift,
)
from churnops.monitor.segments import batch_builder, check_segment_columns, profile_segments
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.summaries import summarize
from churnops.monitor.target import target_drift


def new_run_id(now: datetime) -> str:
    """A sortable, unique run id: UTC time to the millisecond plus a random suffix.

    >>> new_run_id(datetime(2026, 11, 27, 6, 32, 22, 123456, tzinfo=timezone.utc))[:19]
    '20261127T063222123Z'
    """
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-" + uuid.uuid4().hex[:8]


def evaluate(
    profile: ReferenceProfile,
    tally: BatchTally,
    settings: MonitorSettings,
    reference_info: DatasetInfo | None = None,
    current_info: DatasetInfo | None = None,
    engine: str = "native",
    on_column: Callable[[int, int], None] | None = None,
) -> MonitoringResult:
    """Drift, target drift and data quality from a reference profile and an accumulated batch.

    ``on_column(done, total)`` is called after each column's test.

    Raises
    ------
    ConfigError
        When a configured test does not fit a column.
    """
    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    features: list[ColumnDrift] = []
    target: TargetDrift | None = None
    prediction: ColumnDrift | None = None
    for done, column in enumerate(tally.columns.values(), start=1):
        if on_column is not None:
            on_column(done - 1, len(tally.columns))
        plan = column.profile.plan
        reference, current = column.profile.sample, column.sample
        assert reference is not None and current is not None
        if plan.role == "target":
            target = target_drift(plan, reference, current, settings)
            continue
        try:
            result = column_drift(plan, reference, current, settings)
        except ColumnTestError as exc:
            if settings.method_for(plan.name, plan.test_type):
                raise ConfigError(f"drift method for column '{plan.name}': {exc}") from None
            result = _undecidable(column, str(exc))
        if plan.role == "prediction":
            prediction = result
        else:
            features.append(result)
    segments = segment_drift(profile, tally, settings) if settings.segments else None
    features, segments = adjust_columns(features, segments)
    multivariate = None
    if settings.multivariate:
        require_sklearn()
        if profile.joint is not None and tally.joint is not None:
            multivariate = multivariate_drift(profile.joint, tally.joint, settings.fdr)
    tested = time.perf_counter()
    quality = data_quality(tally, settings, (file_format(reference_info), file_format(current_info)))
    finished = time.perf_counter()
    skipped = [SkippedColumn(c.plan.name, c.skip_reason) for c in profile.columns.values() if c.skip_reason]
    if target is None and settings.target:  # a target named but left out (free text, no value): said
        reason = next((c.skip_reason for c in profile.columns.values() if c.plan.name == settings.target), None)
        if reason and reason != UNLABELLED_REASON:
            target = TargetDrift.not_compared(settings.target, f"not a label it can compare ({reason})")
    skipped += [
        SkippedColumn(c.plan.name, UNLABELLED_REASON)
        for c in profile.tested
        if c.plan.role == "target"
        and (c.plan.name not in tally.columns or labels_to_come(tally.columns[c.plan.name], tally.rows))
    ]
    return MonitoringResult(
        run_id=new_run_id(now),
        created_at=now.isoformat(timespec="milliseconds"),
        engine=engine,
        reference=reference_info or DatasetInfo(None, profile.rows, columns=len(profile.columns)),
        current=current_info or DatasetInfo(None, tally.rows),
        dataset_drift=dataset_drift(features, settings, segments),
        columns=features,
        target_drift=target,
        prediction_drift=prediction,
        data_quality=quality,
        skipped=skipped,
        settings=settings.to_dict(),
        timings={
            "drift_s": tested - started,
            "quality_s": finished - tested,
            **({"multivariate_s": multivariate.seconds} if multivariate is not None else {}),
        },
        segments=segments,
        multivariate=multivariate,
    )


def segment_drift(profile: ReferenceProfile, tally: BatchTally, settings: MonitorSettings) -> Segments:
    """Every feature column tested inside each segment large enough on both sides."""
    keys = list(profile.segments) + [key for key in tally.segment_rows if key not in profile.segments]
    order = {name: i for i, name in enumerate(settings.segments)}
    keys.sort(key=lambda key: (order.get(key[0], len(order)), -_rows(profile, key), key[1]))
    groups = []
    for key in keys:
        column, value = key
        reference_rows = _rows(profile, key)
        current_rows = tally.segment_rows.get(key, 0)
        reason = None
        if key not in profile.segments:
            reason = "not in the reference"
        elif current_rows == 0:
            reason = "not in this batch"
        elif min(reference_rows, current_rows) < settings.min_segment_rows:
            reason = f"fewer than {settings.min_segment_rows:,} rows (drift.min_segment_rows) on one side"
        tested: list[ColumnDrift] = []
        if reason is None:
            for part in tally.segments[key].columns.values():
                plan = part.profile.plan
                if plan.role != "feature" or plan.name == column:
                    continue
                assert part.profile.sample is not None and part.sample is not None
                try:
                    tested.append(column_drift(plan, part.profile.sample, part.sample, settings))
                except ColumnTestError:
                    continue  # no usable value on one side inside this segment: nothing to compare
        groups.append(
            SegmentDrift(column, value, reference_rows, current_rows, tested, settings.dataset_drift_threshold, reason)
        )
    return Segments(list(settings.segments), settings.min_segment_rows, groups)


def _rows(profile: ReferenceProfile, key: tuple[str, str]) -> int:
    segment = profile.segments.get(key)
    return segment.rows if segment is not None else 0


UNLABELLED_REASON = "the target, not in this batch (no labels yet): its rate is not compared"


def _undecidable(column: ColumnTally, reason: str) -> ColumnDrift:
    """A column whose current data cannot be tested at all (e.g. every value missing).

    Such a column has certainly not kept its reference distribution: it counts as drifted.
    """
    plan = column.profile.plan
    assert column.profile.summary is not None and column.sample is not None
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
        reference=column.profile.summary,
        current=summarize(column.sample),
        type_source="config" if plan.declared else "inferred",
        note=reason,
    )


def compare_chunks(
    profile: ReferenceProfile,
    columns: list[str],
    chunks: Iterable[pl.DataFrame],
    settings: MonitorSettings,
    reference_info: DatasetInfo | None = None,
    current_info: DatasetInfo | None = None,
) -> MonitoringResult:
    """Compare a batch given as consecutive chunks (all with the header ``columns``)."""
    started = time.perf_counter()
    builder = batch_builder(profile, columns, settings)
    for chunk in chunks:
        builder.update(chunk)
    tally = builder.finish()
    accumulated = time.perf_counter()
    result = evaluate(profile, tally, settings, reference_info, current_info)
    return replace(result, timings={"accumulate_current_s": accumulated - started, **result.timings})


def compare(
    profile: ReferenceProfile,
    current: pl.DataFrame,
    settings: MonitorSettings,
    reference_info: DatasetInfo | None = None,
    current_info: DatasetInfo | None = None,
) -> MonitoringResult:
    """Compare an in-memory batch with a reference profile."""
    info = current_info or DatasetInfo(None, current.height, columns=current.width)
    return compare_chunks(profile, current.columns, [current], settings, reference_info, info)


def monitor_frames(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    settings: MonitorSettings,
    reference_info: DatasetInfo | None = None,
    current_info: DatasetInfo | None = None,
) -> MonitoringResult:
    """Profile ``reference`` and compare ``current`` with it, both in memory.

    Examples
    --------
    >>> ref = pl.DataFrame({"x": [float(i) for i in range(50)], "c": ["a", "b"] * 25})
    >>> cur = pl.DataFrame({"x": [float(i) + 40 for i in range(50)], "c": ["a", "b"] * 25})
    >>> result = monitor_frames(ref, cur, MonitorSettings(target=None))
    >>> result.column("x").drift_detected, result.column("c").drift_detected
    (True, False)
    """
    started = time.perf_counter()
    profile = build_profile(reference, settings)
    require_tested(profile, "the reference")
    if settings.segments:
        check_segment_columns(settings, reference.columns, "the reference")
        profile = replace(profile, segments=profile_segments([reference], profile, settings))
    profiled = time.perf_counter()
    result = compare(profile, current, settings, reference_info, current_info)
    timings = {"profile_reference_s": profiled - started, **result.timings}
    if settings.chunk_by:
        from churnops.monitor.chunks import chunks_of

        chunked = time.perf_counter()
        result = replace(result, chunks=chunks_of(profile, current, settings))
        timings["chunks_s"] = time.perf_counter() - chunked
    return replace(with_any_finding_rate(result, settings), timings=timings)
