"""Time chunks: the batch cut into periods (or runs of rows), each compared with the reference.

A batch that covers a month can hide when a change started: the whole month may look fine while
its last week drifted, or drift because of one bad day. With ``drift.chunk_by = "period:1w"`` and
``drift.time_column = "Signup Date"`` each week of the batch gets its own verdict against the whole
reference; ``size:5000`` cuts runs of 5,000 rows in file order instead. A chunk is tested when it
holds at least ``drift.min_chunk_rows`` rows; smaller ones are listed, not tested.

Every feature column of every chunk is tested as the whole batch's columns are. With the
calibrated verdict the p-values of all the chunks are adjusted together (Benjamini-Hochberg at
``drift.fdr``, a family of its own, so cutting the batch into more chunks neither changes the
whole batch's verdict nor adds false alarms); each test's null distribution is that of the
chunk's own size, which is what "thresholds per chunk size" means for the calibrated tests. With
Evidently's rule each chunk is decided with Evidently's cut-offs, which fire more often on small
chunks (see the README's "How churnops decides").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone

import polars as pl

from churnops.errors import ConfigError, InputDataError
from churnops.monitor.batch import BatchBuilder
from churnops.monitor.calibrated import adjust
from churnops.monitor.drift import ColumnTestError, column_drift
from churnops.monitor.profile import ReferenceProfile
from churnops.monitor.results import ChunkDrift, Chunks, ColumnDrift
from churnops.monitor.segments import segment_settings
from churnops.monitor.settings import MonitorSettings

MAX_CHUNKS = 1_000
"""More chunks than this is refused: a period far too short for the batch (or a size too small)."""
_PERIOD = re.compile(r"^period:([1-9][0-9]{0,3})(h|d|w|mo|q|y)$")
_SIZE = re.compile(r"^size:([1-9][0-9]{0,9})$")
_EVERY = {"h": "h", "d": "d", "w": "w", "mo": "mo", "q": "q", "y": "y"}


def needed_columns(profile: ReferenceProfile, settings: MonitorSettings) -> list[str]:
    """The batch's columns a chunk pass reads: the tested columns but the target, and the time column."""
    needed = [column.plan.name for column in profile.tested if column.plan.role != "target"]
    if settings.time_column and settings.time_column not in needed:
        needed.append(settings.time_column)
    return needed


def cut(frame: pl.DataFrame, settings: MonitorSettings) -> tuple[list[tuple[str, str, str, pl.DataFrame]], int]:
    """The chunks of ``frame`` in time (or row) order as (label, start, end, rows), and how many
    rows no chunk holds (no usable time).

    Raises
    ------
    InputDataError
        When the time column holds no dates, or the batch would make more than
        :data:`MAX_CHUNKS` chunks.
    """
    size = _SIZE.match(settings.chunk_by)
    if size is not None:
        n = int(size.group(1))
        count = -(-frame.height // n) if frame.height else 0
        _check_count(count, settings.chunk_by)
        out = []
        for index in range(count):
            first, last = index * n + 1, min((index + 1) * n, frame.height)
            out.append((f"rows {first:,}-{last:,}", str(first), str(last), frame.slice(index * n, n)))
        return out, 0
    period = _PERIOD.match(settings.chunk_by)
    if period is None or not settings.time_column:
        raise ConfigError(f"drift.chunk_by = {settings.chunk_by!r} is not period:<n><h|d|w|mo|q|y> or size:<rows>")
    column = settings.time_column
    if column not in frame.columns:
        raise InputDataError(f"drift.time_column: '{column}' is not a column of the batch")
    times = _as_datetime(frame[column], column)
    every = period.group(1) + _EVERY[period.group(2)]
    starts = times.dt.truncate(every)
    placed = starts.is_not_null()
    unplaced = int((~placed).sum())
    keyed = frame.with_columns(starts.alias("__churnops_chunk__")).filter(placed)
    values = keyed["__churnops_chunk__"].unique().sort().to_list()
    _check_count(len(values), settings.chunk_by)
    out = []
    for start in values:
        end = pl.Series([start]).dt.offset_by(every)[0]
        rows = keyed.filter(pl.col("__churnops_chunk__") == start).drop("__churnops_chunk__")
        out.append((_label(start, period.group(2)), _iso(start), _iso(end), rows))
    return out, unplaced


def _check_count(count: int, chunk_by: str) -> None:
    if count > MAX_CHUNKS:
        raise InputDataError(
            f"drift.chunk_by = {chunk_by!r} cuts the batch into {count:,} chunks (at most {MAX_CHUNKS:,}): "
            "choose a longer period or a larger size"
        )


def _as_datetime(values: pl.Series, column: str) -> pl.Series:
    """The time column as datetimes: dates and datetimes as they are, text parsed (ISO 8601 and
    the formats polars recognises); values that are not dates become missing."""
    dtype = values.dtype
    if isinstance(dtype, pl.Datetime):
        return values.dt.replace_time_zone(None) if dtype.time_zone else values  # type: ignore[union-attr]
    if dtype == pl.Date:
        return values.cast(pl.Datetime("us"))
    if dtype in (pl.String, pl.Categorical, pl.Enum):
        text = values.cast(pl.String)
        parsed = text.str.to_datetime(strict=False, time_unit="us")
        if parsed.null_count() == parsed.len() and text.null_count() < text.len():
            parsed = text.str.to_date(strict=False).cast(pl.Datetime("us"))
        if parsed.null_count() < parsed.len():
            return parsed
    raise InputDataError(
        f"drift.time_column: '{column}' holds no dates ({dtype}); it needs dates or date-times, "
        "e.g. 2024-01-31 or 2024-01-31 08:15:00"
    )


def _label(start: datetime, unit: str) -> str:
    if unit == "h":
        return start.strftime("%Y-%m-%d %H:00")
    if unit == "mo":
        return start.strftime("%Y-%m")
    if unit == "y":
        return start.strftime("%Y")
    if unit == "q":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return start.strftime("%Y-%m-%d")


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def chunk_drift(
    profile: ReferenceProfile,
    chunks: list[tuple[str, str, str, pl.DataFrame]],
    settings: MonitorSettings,
    unplaced_rows: int = 0,
) -> Chunks:
    """Every feature column of every chunk large enough, compared with the whole reference."""
    inner = segment_settings(settings, profile)
    groups: list[ChunkDrift] = []
    for label, start, end, rows in chunks:
        reason = None
        if rows.height < settings.min_chunk_rows:
            reason = f"fewer than {settings.min_chunk_rows:,} rows (drift.min_chunk_rows)"
        tested: list[ColumnDrift] = []
        if reason is None:
            builder = BatchBuilder(profile, rows.columns, inner)
            builder.update(rows)
            for column in builder.finish().columns.values():
                plan = column.profile.plan
                if plan.role != "feature" or plan.name == settings.time_column:
                    continue
                assert column.profile.sample is not None and column.sample is not None
                try:
                    tested.append(column_drift(plan, column.profile.sample, column.sample, settings))
                except ColumnTestError:
                    continue  # no usable value in this chunk: nothing to compare
        groups.append(ChunkDrift(label, start, end, rows.height, tested, settings.dataset_drift_threshold, reason))
    return Chunks(settings.chunk_by, settings.time_column, settings.min_chunk_rows, _adjusted(groups), unplaced_rows)


def _adjusted(groups: list[ChunkDrift]) -> list[ChunkDrift]:
    """With the calibrated verdict: every chunk's p-values adjusted together, each decided again."""
    family = [c for g in groups for c in g.columns]
    if not any(c.calibration is not None for c in family):
        return groups
    adjusted: Iterator[ColumnDrift] = iter(adjust(family))
    return [replace(g, columns=[next(adjusted) for _ in g.columns]) for g in groups]
