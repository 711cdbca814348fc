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
from datetime import datetime

import polars as pl

from churnops.errors import ConfigError, InputDataError
from churnops.monitor.batch import BatchBuilder
from churnops.monitor.calibrated import adjust
from churnops.monitor.drift import ColumnTestError, column_drift
from churnops.monitor.prepare import date_family, read_dates
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
    rows no chunk holds (no usable time). Every period from the first to the last is a chunk,
    empty ones included (a week without data is worth seeing).

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
    times = as_datetime(frame[column], column, settings.time_format)
    every = period.group(1) + _EVERY[period.group(2)]
    starts = times.dt.truncate(every)
    placed = starts.is_not_null()
    unplaced = int((~placed).sum())
    if unplaced == frame.height and frame.height:
        raise InputDataError(f"drift.time_column: no row of the batch has a date in '{column}'")
    if not frame.height:
        return [], 0
    first, last = starts.min(), starts.max()
    count = _period_count(first, last, every)
    if count > MAX_CHUNKS:
        span = pl.Series([first, last]).dt.to_string("%Y-%m-%d").to_list()
        raise InputDataError(
            f"drift.chunk_by = {settings.chunk_by!r} cuts the batch into {count:,} chunks (at most {MAX_CHUNKS:,}): "
            f"its dates in '{column}' run from {span[0]} to {span[1]}; choose a longer period, or remove the "
            "placeholder dates"
            + (' (two-digit years? set drift.time_format, e.g. "%d-%m-%y")' if first.year < 1000 else "")
        )
    periods = pl.datetime_range(first, last, interval=every, eager=True, time_unit="us")
    keyed = frame.with_columns(starts.alias(_KEY)).filter(placed)
    parts = {part[_KEY][0]: part.drop(_KEY) for part in keyed.partition_by(_KEY, maintain_order=False)}
    labels = _labels(periods, period.group(2)).to_list()
    iso = "%Y-%m-%dT%H:%M:%SZ"
    begins = periods.dt.to_string(iso).to_list()
    ends = periods.dt.offset_by(every).dt.to_string(iso).to_list()
    empty = frame.clear()
    out = []
    for index, start in enumerate(periods.to_list()):
        rows = parts.get(start)
        out.append((labels[index], begins[index], ends[index], rows if rows is not None else empty))
    return out, unplaced


_KEY = "__churnops_chunk__"


def _period_count(first: datetime, last: datetime, every: str) -> int:
    """How many periods of ``every`` from ``first`` to ``last`` (both period starts), without
    building them (a decade of hours must be refused, not listed)."""
    unit = every.lstrip("0123456789")
    n = int(every[: len(every) - len(unit)])
    if unit in ("mo", "q", "y"):
        months = (last.year - first.year) * 12 + last.month - first.month
        return months // (n * {"mo": 1, "q": 3, "y": 12}[unit]) + 1
    seconds = {"h": 3_600, "d": 86_400, "w": 604_800}[unit] * n
    return int((last - first).total_seconds() // seconds) + 1


def _check_count(count: int, chunk_by: str) -> None:
    if count > MAX_CHUNKS:
        raise InputDataError(
            f"drift.chunk_by = {chunk_by!r} cuts the batch into {count:,} chunks (at most {MAX_CHUNKS:,}): "
            "choose a longer period or a larger size"
        )


def as_datetime(values: pl.Series, column: str, time_format: str | None = None) -> pl.Series:
    """The time column as datetimes without a time zone, in UTC (times with a zone or an offset
    are converted); text read with ``time_format`` when given, else with the one family of
    formats - year first (ISO 8601), day first, month first, month names - that reads the most
    values. Values no format reads are missing (the rows are in no chunk).

    Raises
    ------
    InputDataError
        When nothing in the column reads as a date, or when its dates read as well day first as
        month first and mean different days (``01/05/2024``): ``drift.time_format`` decides.
    """
    dtype = values.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone:
            return values.dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.cast_time_unit("us")
        return values.dt.cast_time_unit("us")
    if dtype == pl.Date:
        return values.cast(pl.Datetime("us"))
    if dtype not in (pl.String, pl.Categorical, pl.Enum):
        raise InputDataError(
            f"drift.time_column: '{column}' holds no dates ({dtype}); it needs dates or date-times, "
            "e.g. 2024-01-31 or 2024-01-31 08:15:00"
        )
    text = values.cast(pl.String).str.strip_chars()
    distinct = text.drop_nulls().unique(maintain_order=True)
    if time_format:
        parsed = read_dates(distinct, (time_format,))
        if parsed.null_count() == parsed.len() and distinct.len():
            raise InputDataError(
                f"drift.time_format {time_format!r} reads no value of '{column}' ({_example(distinct)})"
            )
    else:
        family = date_family(distinct)
        if family.name is None:
            raise InputDataError(
                f"drift.time_column: '{column}' holds no dates ({_example(distinct)}); it needs dates or "
                "date-times such as 2024-01-31 or 2024-01-31 08:15:00, or drift.time_format to read them"
            )
        if family.ambiguous:
            raise InputDataError(
                f"drift.time_column: '{column}' has dates ({_example(distinct)}) that read as day/month and "
                'as month/day: set drift.time_format (e.g. "%d/%m/%Y" or "%m/%d/%Y")'
            )
        parsed = family.parsed
    lookup = pl.DataFrame({"text": distinct, "time": parsed})
    return pl.DataFrame({"text": text}).join(lookup, on="text", how="left", maintain_order="left")["time"]


def _example(values: pl.Series) -> str:
    present = values.drop_nulls()
    shown = present.filter(present.str.len_chars() > 0).head(1).to_list()
    return f"e.g. {str(shown[0])[:40]!r}" if shown else "only missing values"


def _labels(periods: pl.Series, unit: str) -> pl.Series:
    if unit == "q":
        frame = pl.DataFrame({"p": periods})
        return frame.select(
            pl.col("p").dt.year().cast(pl.String).str.zfill(4) + "-Q" + pl.col("p").dt.quarter().cast(pl.String)
        ).to_series()
    fmt = {"h": "%Y-%m-%d %H:00", "mo": "%Y-%m", "y": "%Y"}.get(unit, "%Y-%m-%d")
    return periods.dt.to_string(fmt)


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
        if rows.height == 0:
            reason = "no rows in this period"
        elif rows.height < settings.min_chunk_rows:
            reason = f"fewer than {settings.min_chunk_rows:,} rows (drift.min_chunk_rows)"
        tested: list[ColumnDrift] = []
        if reason is None:
            builder = BatchBuilder(profile, rows.columns, inner, count_rows=False)  # samples only
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


def chunks_of(profile: ReferenceProfile, batch: pl.DataFrame, settings: MonitorSettings) -> Chunks:
    """The batch in memory cut as ``drift.chunk_by`` says, each chunk compared with the reference."""
    pieces, unplaced = cut(batch, settings)
    return chunk_drift(profile, pieces, settings, unplaced)


def _adjusted(groups: list[ChunkDrift]) -> list[ChunkDrift]:
    """With the calibrated verdict: every chunk's p-values adjusted together, each decided again."""
    family = [c for g in groups for c in g.columns]
    if not any(c.calibration is not None for c in family):
        return groups
    adjusted: Iterator[ColumnDrift] = iter(adjust(family))
    return [replace(g, columns=[next(adjusted) for _ in g.columns]) for g in groups]
