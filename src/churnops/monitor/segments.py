"""Segments: every column tested again inside each value of a few columns (``drift.segments``).

A drift confined to one kind of customer (say the SME segment's balances) is diluted in the
whole batch and can stay under every threshold there. With ``drift.segments = ["Customer
Segment"]``, the rows of each value of that column form a segment; each segment's reference rows
get their own profile (cached with the reference's), each segment's batch rows their own tally,
and each feature column is tested inside each segment with at least ``drift.min_segment_rows``
rows on both sides. With the calibrated verdict every (segment, column) test joins the same
Benjamini-Hochberg family as the whole-batch columns, so adding segments does not add false
alarms.

Segments are keyed by their value as text (``"SME"``, ``"3"``, ``"true"``, ``"2024-01-31"``), the
same whatever type a file gave the column (:func:`segment_keys`); rows whose segment value is
missing belong to no segment. The split works on polars DataFrames and Arrow record
batches alike, so the exact, streaming and Dask engines share it: a segment's builder is an
ordinary builder fed with that segment's rows, merged like any other. The exact engine reads
the batch's columns once: each segment's builder takes its rows of what the whole batch's
builder read (the same values as reading those rows alone; dates whose format was inferred
from the values are read again from the segment's rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from churnops.errors import ConfigError
from churnops.monitor.batch import BatchBuilder, BatchTally, CoercedChunk
from churnops.monitor.profile import ProfileBuilder, ReferenceProfile
from churnops.monitor.settings import MonitorSettings

MAX_SEGMENT_VALUES = 50
"""More values than this in one segment column is a configuration mistake (an identifier, a
number): refused, as it would multiply the work and the tests by as many."""
SegmentKey = tuple[str, str]
_DECLARED = {"numerical": "numerical", "datetime": "datetime", "categorical": "categorical"}


def segment_settings(settings: MonitorSettings, profile: ReferenceProfile) -> MonitorSettings:
    """The settings a segment is profiled and tallied with: every column's type as the whole
    reference's profile decided it (a segment's few rows must not change a column's type), no
    identifiers, no target, no segments of its own."""
    declared = {
        name: (
            _DECLARED[column.plan.column_type]
            if column.skip_reason is None and column.plan.role == "feature" and column.plan.column_type in _DECLARED
            else "ignored"
        )
        for name, column in profile.columns.items()
    }
    return replace(
        settings,
        declared_types=declared,
        detect_ids=False,
        segments=(),
        multivariate=False,
        id_columns=(),
        target=None,
        prediction=None,
    )


def check_segment_columns(settings: MonitorSettings, header: list[str], where: str) -> None:
    """Every segment column must be in the data (``where`` names it in the error)."""
    missing = [name for name in settings.segments if name not in header]
    if missing:
        shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
        raise ConfigError(
            f"drift.segments: {', '.join(repr(m) for m in missing)} "
            f"{'is not a column' if len(missing) == 1 else 'are not columns'} of {where} (its columns: {shown})"
        )


def segment_keys(values: pl.Series, column: str) -> pl.Series:
    """Each row's segment as text, the same whatever type the file gave the column.

    A CSV and a Parquet file (or two CSV chunks) can type one column differently; the keys must
    not follow: whole numbers read as floats are written without their ``.0`` (``2.0`` is
    ``"2"``), dates - and date-times at midnight - as ``YYYY-MM-DD``, other times as
    ``YYYY-MM-DD HH:MM:SS`` in UTC (fractions of a second only when there are some), decimals like
    floats, booleans as ``true``/``false``. Missing and not-a-number values belong to no segment.
    Binary columns cannot be segments.
    """
    dtype = values.dtype
    if dtype == pl.Binary or isinstance(dtype, (pl.List, pl.Array, pl.Struct, pl.Object)):
        raise ConfigError(
            f"drift.segments: '{column}' holds {dtype} values; a segment column holds text, numbers, booleans or dates"
        )
    if isinstance(dtype, pl.Decimal):
        values, dtype = values.cast(pl.Float64), pl.Float64
    if dtype in (pl.Float32, pl.Float64):
        finite = values.is_finite()
        whole = finite & (values == values.round(0)) & (values.abs() < 2.0**53)
        frame = pl.DataFrame({"v": values, "finite": finite, "whole": whole})
        return frame.select(
            pl.when(pl.col("whole"))
            .then(pl.col("v").cast(pl.Int64, strict=False).cast(pl.String))
            .when(pl.col("finite") | pl.col("v").is_infinite())
            .then(pl.col("v").cast(pl.String))
            .otherwise(None)
        ).to_series()
    if dtype == pl.Date:
        return values.dt.to_string("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone:
            values = values.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        frame = pl.DataFrame({"v": values})
        midnight = pl.col("v").dt.time() == pl.time(0, 0, 0)
        with_fraction = pl.col("v").dt.nanosecond() != 0
        return frame.select(
            pl.when(midnight)
            .then(pl.col("v").dt.to_string("%Y-%m-%d"))
            .when(with_fraction)
            .then(pl.col("v").dt.to_string("%Y-%m-%d %H:%M:%S%.f"))
            .otherwise(pl.col("v").dt.to_string("%Y-%m-%d %H:%M:%S"))
        ).to_series()
    return values.cast(pl.String, strict=False)


def split(chunk: Any, column: str) -> Iterator[tuple[str, Any]]:
    """The rows of ``chunk`` (polars DataFrame or Arrow record batch) by value of ``column``,
    each value as text (:func:`segment_keys`); rows with no value are in no part."""
    if isinstance(chunk, pl.DataFrame):
        keys = segment_keys(chunk[column], column)
        if keys.null_count() == keys.len():
            return
        for value in keys.drop_nulls().unique(maintain_order=True).to_list():
            yield value, chunk.filter(keys == value)
        return
    keys = segment_keys(pl.Series(column, chunk.column(column)), column)
    if keys.null_count() == keys.len():
        return
    for value in keys.drop_nulls().unique(maintain_order=True).to_list():
        yield value, chunk.filter((keys == value).fill_null(False).to_arrow())


def split_rows(chunk: pl.DataFrame, column: str) -> Iterator[tuple[str, pl.Series, NDArray[np.intp]]]:
    """The rows of ``chunk`` by value of ``column``, each part as a mask and as its row numbers
    (ascending), in the order and with the keys of :func:`split`."""
    keys = segment_keys(chunk[column], column)
    nulls = keys.null_count()
    if nulls == keys.len():
        return
    for value in keys.unique(maintain_order=True).to_list():
        if value is None:
            continue
        mask = keys == value
        if nulls:
            mask = mask.fill_null(False)
        yield value, mask, np.flatnonzero(mask.to_numpy())


def _height(chunk: Any) -> int:
    return chunk.height if isinstance(chunk, pl.DataFrame) else int(chunk.num_rows)


def _too_many(column: str, where: str) -> ConfigError:
    return ConfigError(
        f"drift.segments: '{column}' has more than {MAX_SEGMENT_VALUES} values in {where}; a segment column "
        "needs few values (a customer segment, a region, a channel)"
    )


def profile_segments(
    chunks: Iterable[Any], profile: ReferenceProfile, settings: MonitorSettings, streaming: bool = False
) -> dict[SegmentKey, ReferenceProfile]:
    """One profile per segment of the reference, from a second pass over its rows."""
    builder = SegmentProfiles(profile, settings, streaming=streaming)
    for chunk in chunks:
        builder.update(chunk)
    return builder.finish()


class SegmentProfiles:
    """The profiles of the reference's segments, fed chunk by chunk; parts of the reference
    accumulated apart (a Spark partition each) are merged in row order."""

    def __init__(self, profile: ReferenceProfile, settings: MonitorSettings, streaming: bool = False) -> None:
        self.inner = segment_settings(settings, profile)
        self.segment_columns = list(settings.segments)
        self.names = list(profile.columns)
        self.streaming = streaming
        self.builders: dict[SegmentKey, ProfileBuilder] = {}

    def _builder(self, key: SegmentKey) -> ProfileBuilder:
        builder = self.builders.get(key)
        if builder is None:
            if sum(1 for k in self.builders if k[0] == key[0]) >= MAX_SEGMENT_VALUES:
                raise _too_many(key[0], "the reference")
            builder = self.builders[key] = ProfileBuilder(self.names, self.inner, streaming=self.streaming)
        return builder

    def update(self, chunk: Any) -> None:
        for column in self.segment_columns:
            for value, part in split(chunk, column):
                self._builder((column, value)).update(part)

    def merge(self, other: SegmentProfiles) -> None:
        for key, builder in other.builders.items():
            mine = self.builders.get(key)
            if mine is None:
                self._builder(key)
                self.builders[key] = builder
            else:
                mine.merge(builder)

    def finish(self) -> dict[SegmentKey, ReferenceProfile]:
        return {key: builder.finish() for key, builder in self.builders.items()}


def profile_columns(profile: ReferenceProfile, settings: MonitorSettings) -> list[str]:
    """The reference columns a segment pass reads: the tested features and the segment columns."""
    inner = segment_settings(settings, profile)
    needed = [name for name in profile.columns if inner.declared(name) != "ignored"]
    return needed + [name for name in settings.segments if name not in needed]


class SegmentedBatchBuilder:
    """A :class:`BatchBuilder` for the whole batch plus one per segment, fed from the same chunks.

    It has the builder's interface (``update``, ``merge``, ``finish``, ``needed``, ``rows``...),
    so the engines use it as they use a builder; ``finish`` returns the whole batch's tally with
    each segment's in :attr:`BatchTally.segments`. A segment's builder skips the row and
    identifier counts (data quality is about the whole batch).
    """

    def __init__(self, main: BatchBuilder, profile: ReferenceProfile, columns: list[str], settings: MonitorSettings):
        check_segment_columns(settings, columns, "the batch")
        self.main = main
        self.segment_columns = settings.segments
        self.inner = segment_settings(settings, profile)
        self.profiles = profile.segments
        self.columns = list(columns)
        self.builders: dict[SegmentKey, BatchBuilder] = {}
        self.segment_rows: dict[SegmentKey, int] = {}
        self.needed = main.needed + [name for name in settings.segments if name not in main.needed]
        self.read_columns = main.read_columns + [name for name in self.needed if name not in main.read_columns]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "main":
            raise AttributeError(name)
        return getattr(self.main, name)

    @property
    def jobs(self) -> int:
        return self.main.jobs

    @jobs.setter
    def jobs(self, value: int) -> None:
        self.main.jobs = value

    def update(self, chunk: Any) -> None:
        chunk = self.main.without_empty_rows(chunk)  # in no segment either
        coerced = self.main.update_and_coerce(chunk)
        if coerced is None:  # the streaming engine: each segment's rows read on their own
            for column in self.segment_columns:
                for value, part in split(chunk, column):
                    self._add((column, value), part)
            return
        # the exact engine: each segment takes its rows of the columns already read
        if not isinstance(chunk, pl.DataFrame):
            chunk = pl.from_arrow(chunk)
        for column in self.segment_columns:
            for value, mask, rows in split_rows(chunk, column):
                self._add_rows((column, value), chunk, coerced, mask, rows)

    def _add_rows(
        self, key: SegmentKey, chunk: pl.DataFrame, coerced: CoercedChunk, mask: pl.Series, rows: NDArray[np.intp]
    ) -> None:
        builder = self._builder(key, int(rows.size))
        if builder is None:
            return
        taken = [name for name, tally in builder.tallies.items() if coerced.can_take(name, tally)]
        part = coerced.rows(mask, rows, taken)
        rest = [name for name in builder.tallies if name not in taken]
        if rest:  # read again from just these rows
            part.add(builder.coerce(chunk.select(rest).filter(mask), rest))
        builder.update_coerced(part)

    def _add(self, key: SegmentKey, part: Any) -> None:
        builder = self._builder(key, _height(part))
        if builder is not None:
            builder.update(part)

    def _builder(self, key: SegmentKey, rows: int) -> BatchBuilder | None:
        """The builder of a segment given ``rows`` more rows (None: a value the reference never
        had, counted, not tested)."""
        if key not in self.segment_rows and sum(1 for k in self.segment_rows if k[0] == key[0]) >= MAX_SEGMENT_VALUES:
            raise _too_many(key[0], "the batch")
        self.segment_rows[key] = self.segment_rows.get(key, 0) + rows
        profile = self.profiles.get(key)
        if profile is None:
            return None
        builder = self.builders.get(key)
        if builder is None:
            builder = self.builders[key] = BatchBuilder(
                profile, self.columns, self.inner, streaming=self.main.streaming, count_rows=False
            )
        return builder

    def merge(self, other: SegmentedBatchBuilder) -> None:
        self.main.merge(other.main)
        for key, rows in other.segment_rows.items():
            self.segment_rows[key] = self.segment_rows.get(key, 0) + rows
        for key, builder in other.builders.items():
            mine = self.builders.get(key)
            if mine is None:
                self.builders[key] = builder
            else:
                mine.merge(builder)

    def _wait_pending(self) -> None:
        self.main._wait_pending()
        for builder in self.builders.values():
            builder._wait_pending()

    def finish(self) -> BatchTally:
        tally = self.main.finish()
        return replace(
            tally,
            segments={key: builder.finish() for key, builder in self.builders.items()},
            segment_rows=dict(self.segment_rows),
        )

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def batch_builder(
    profile: ReferenceProfile, columns: list[str], settings: MonitorSettings, **options: Any
) -> BatchBuilder | SegmentedBatchBuilder:
    """The builder of a batch: with segments configured, one that also tallies each segment."""
    main = BatchBuilder(profile, columns, settings, **options)
    if not settings.segments:
        return main
    return SegmentedBatchBuilder(main, profile, columns, settings)
