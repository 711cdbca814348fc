"""The reference profile: everything the tests need from the reference, computed once.

A profile holds, per column, its plan (role and type), its prepared sample (sorted finite
values, or category labels and counts) and its summary. It is built chunk by chunk
(:class:`ProfileBuilder`), so the reference never has to fit in memory as a table, and builders
fed with consecutive parts of a table merge into one (partitions computed elsewhere).
:meth:`ReferenceProfile.to_payload` / :meth:`from_payload` turn a profile into plain arrays and
JSON (no pickle) for the cache in :mod:`churnops.pipeline.profile_cache`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from churnops.errors import InputDataError
from churnops.escape import one_line_short
from churnops.monitor.accumulate import AutoAccumulator, CategoryAccumulator, NumericAccumulator, SketchAccumulator
from churnops.monitor.columns import ColumnPlan, ColumnType, Role
from churnops.monitor.multivariate import JointSample, RowSampler, encode
from churnops.monitor.prepare import (
    CategoricalSample,
    NumericalSample,
    coerce_categorical,
    coerce_datetime,
    coerce_numerical,
    drop_empty_rows,
    numbers_as_text,
)
from churnops.monitor.results import ColumnSummary
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.summaries import summarize

PROFILE_FORMAT = 6
"""3 -> 4: categorical columns as counts only (no code per row); 4 -> 5: labels over 120
characters kept as their :func:`~churnops.monitor.prepare.label_key`, and the codes in row order
of TVD columns of numbers (``codes_<i>``); 5 -> 6: rows without any value (blank lines) left out."""


@dataclass(frozen=True)
class ColumnProfile:
    """One reference column: plan, source dtype, prepared sample and summary."""

    plan: ColumnPlan
    dtype: str
    sample: NumericalSample | CategoricalSample | None
    summary: ColumnSummary | None
    skip_reason: str | None = None

    @property
    def empty(self) -> bool:
        """Whether the column is untested for want of any value in the reference - every cell
        missing, not unparsable - rather than for its role or a nested type (lists, structs)."""
        if self.skip_reason == EMPTY_IN_REFERENCE:
            return self.sample is not None and self.sample.unparsable == 0
        return self.skip_reason == UNKNOWN_REASON and not self.dtype.startswith(("List", "Array", "Struct", "Object"))


@dataclass(frozen=True)
class ReferenceProfile:
    """Profiles of every reference column, in file order."""

    rows: int
    columns: dict[str, ColumnProfile]
    segments: dict[tuple[str, str], ReferenceProfile] = field(default_factory=dict)
    """The profile of each segment (``drift.segments``), by (column, value as text)."""
    joint: JointSample | None = None
    """A sample of whole rows for the multivariate detectors (``drift.multivariate``)."""

    @property
    def tested(self) -> list[ColumnProfile]:
        return [c for c in self.columns.values() if c.skip_reason is None]

    def to_payload(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """A JSON-able manifest and named arrays that together rebuild the profile."""
        manifest: dict[str, Any] = {"format": PROFILE_FORMAT, "rows": self.rows, "columns": []}
        arrays: dict[str, np.ndarray] = {}
        for index, (name, column) in enumerate(self.columns.items()):
            plan = column.plan
            entry: dict[str, Any] = {
                "name": name,
                "role": plan.role,
                "column_type": plan.column_type,
                "declared": plan.declared,
                "dtype": column.dtype,
                "skip_reason": column.skip_reason,
                "sample": None,
            }
            sample = column.sample
            if isinstance(sample, NumericalSample):
                arrays[f"values_{index}"] = sample.values
                if sample.weights is not None:
                    arrays[f"weights_{index}"] = sample.weights
                entry["sample"] = {
                    "kind": "numerical",
                    "rows": sample.rows,
                    "missing": sample.missing,
                    "infinite": sample.infinite,
                    "unparsable": sample.unparsable,
                    "bounds": list(sample.bounds) if sample.bounds is not None else None,
                    "relative_error": sample.relative_error,
                }
            elif isinstance(sample, CategoricalSample):
                arrays[f"counts_{index}"] = sample.counts
                if sample.codes is not None:
                    arrays[f"codes_{index}"] = sample.codes
                entry["sample"] = {
                    "kind": "categorical",
                    "labels": sample.labels,
                    "rows": sample.rows,
                    "missing": sample.missing,
                    "unparsable": sample.unparsable,
                }
            manifest["columns"].append(entry)
        if self.joint is not None:
            manifest["joint"] = {
                "rows": self.joint.rows,
                "numbers": list(self.joint.numbers),
                "categories": [{"name": n, "labels": labels} for n, (labels, _) in self.joint.categories.items()],
            }
            for number, values in enumerate(self.joint.numbers.values()):
                arrays[f"joint_numbers_{number}"] = values
            for number, (_, codes) in enumerate(self.joint.categories.values()):
                arrays[f"joint_codes_{number}"] = codes
        if self.segments:
            manifest["segments"] = []
            for number, ((column, value), segment) in enumerate(self.segments.items()):
                sub_manifest, sub_arrays = segment.to_payload()
                manifest["segments"].append({"column": column, "value": value, "manifest": sub_manifest})
                arrays.update({f"s{number}.{name}": array for name, array in sub_arrays.items()})
        json.dumps(manifest)  # fail here, not half-way through a write, if a label is not JSON
        return manifest, arrays

    @classmethod
    def from_payload(cls, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> ReferenceProfile:
        if manifest.get("format") != PROFILE_FORMAT:
            raise ValueError(f"unsupported profile format {manifest.get('format')!r}")
        columns: dict[str, ColumnProfile] = {}
        for index, entry in enumerate(manifest["columns"]):
            plan = ColumnPlan(entry["name"], entry["role"], entry["column_type"], entry["declared"])
            info = entry["sample"]
            sample: NumericalSample | CategoricalSample | None = None
            if info and info["kind"] == "numerical":
                weights = arrays.get(f"weights_{index}")
                sample = NumericalSample(
                    arrays[f"values_{index}"].astype(np.float64, copy=False),
                    info["rows"],
                    info["missing"],
                    info["infinite"],
                    info["unparsable"],
                    None if weights is None else weights.astype(np.int64, copy=False),
                    bounds=tuple(info["bounds"]) if info.get("bounds") else None,  # type: ignore[arg-type]
                    relative_error=float(info.get("relative_error", 0.0)),
                )
            elif info and info["kind"] == "categorical":
                labels = list(info["labels"])
                counts = arrays[f"counts_{index}"].astype(np.int64, copy=False)
                codes = arrays.get(f"codes_{index}")
                if codes is not None:
                    codes = checked_codes(codes, counts)
                sample = CategoricalSample(labels, counts, info["rows"], info["missing"], info["unparsable"], codes)
            summary = summarize(sample) if sample is not None else None
            columns[plan.name] = ColumnProfile(plan, entry["dtype"], sample, summary, entry["skip_reason"])
        joint = None
        if manifest.get("joint") is not None:
            info = manifest["joint"]
            joint = JointSample(
                int(info["rows"]),
                {
                    name: arrays[f"joint_numbers_{i}"].astype(np.float64, copy=False)
                    for i, name in enumerate(info["numbers"])
                },
                {
                    entry["name"]: (list(entry["labels"]), arrays[f"joint_codes_{i}"].astype(np.int32, copy=False))
                    for i, entry in enumerate(info["categories"])
                },
            )
        segments: dict[tuple[str, str], ReferenceProfile] = {}
        for number, entry in enumerate(manifest.get("segments") or []):
            prefix = f"s{number}."
            sub_arrays = {name[len(prefix) :]: array for name, array in arrays.items() if name.startswith(prefix)}
            segments[(entry["column"], entry["value"])] = cls.from_payload(entry["manifest"], sub_arrays)
        return cls(int(manifest["rows"]), columns, segments, joint)


Accumulator = NumericAccumulator | SketchAccumulator | CategoryAccumulator | AutoAccumulator
DECLARED_TYPES: dict[str, ColumnType] = {
    "numerical": "numerical",
    "datetime": "datetime",
    "categorical": "categorical",
    "binary": "categorical",
}


IDENTIFIER_REASON = (
    "looks like a row number or identifier (unique whole numbers that only grow or only fall): not tested; "
    "declare it in [columns] to test it"
)


class _OrderWatch:
    """Whether a column's whole numbers are strictly monotonic over every row seen so far.

    Strictly monotonic values are unique, so a column that stays so over the whole reference is
    a row number or an identifier, not a feature (a drift test on it can only raise false alarms).
    """

    def __init__(self) -> None:
        self.possible = True
        self.direction = 0
        self.first: int | None = None
        self.last: int | None = None

    def update(self, series: pl.Series) -> None:
        if not self.possible or (series.len() == 0 and series.dtype.is_integer()):
            return  # no row: nothing learnt
        if not series.dtype.is_integer() or series.null_count() or series.len() == 0:
            self.possible = False
            return
        steps = series.diff().drop_nulls()
        low, high = (steps.min(), steps.max()) if steps.len() else (None, None)
        first, last = int(series[0]), int(series[-1])
        join = 0 if self.last is None else (first > self.last) - (first < self.last)
        chunk = 0 if low is None else (1 if low > 0 else (-1 if high < 0 else 2))  # type: ignore[operator]
        directions = {d for d in (join, chunk) if d != 0} | ({self.direction} if self.direction else set())
        if chunk == 2 or (self.last is not None and join == 0) or len(directions) > 1:
            self.possible = False
            return
        self.direction = next(iter(directions), 0)
        if self.first is None:
            self.first = first
        self.last = last

    def merge(self, other: _OrderWatch) -> None:
        """Absorb the watch of the rows that follow this one's."""
        if not self.possible or other.last is None:
            self.possible = self.possible and other.possible
            return
        if not other.possible:
            self.possible = False
            return
        if self.last is None:
            self.direction, self.first, self.last = other.direction, other.first, other.last
            return
        assert other.first is not None
        join = (other.first > self.last) - (other.first < self.last)
        directions = {d for d in (join, other.direction, self.direction) if d != 0}
        if join == 0 or len(directions) > 1:
            self.possible = False
            return
        self.direction = next(iter(directions))
        self.last = other.last


class ProfileBuilder:
    """Accumulates reference chunks column by column; :meth:`finish` returns the profile."""

    def __init__(
        self, columns: list[str], settings: MonitorSettings, streaming: bool = False, text_numbers: bool = False
    ) -> None:
        self.columns = list(columns)
        self.settings = settings
        self.streaming = streaming
        self.text_numbers = text_numbers
        """Read text columns that hold numbers as numbers (:func:`numbers_as_text`): a CSV's, whose
        types its reader guessed - never a Parquet file's, whose writer said text."""
        self.rows = 0
        self.empty_rows = 0
        """Rows without a value in any column read, left out (:func:`drop_empty_rows`)."""
        self.accumulators: dict[str, Accumulator] = {}
        self.dtypes: dict[str, str] = {}
        self.likes: dict[str, pl.DataType] = {}
        self.order: dict[str, _OrderWatch] = {}
        """Undeclared columns watched for identifier-like values (``columns.detect_ids``)."""
        self.joint: RowSampler | None = None
        self.intended: dict[str, pl.DataType] = {}
        """Column types the reader decided (``TableReader.intended``), used when a column's first
        chunk had to be read as text."""
        if settings.multivariate:
            candidates = [c for c in self.needed if settings.declared(c) not in ("target", "prediction")]
            self.joint = RowSampler(candidates, settings.multivariate_rows)

    @property
    def needed(self) -> list[str]:
        """The columns whose values the profile needs (identifiers and ignored ones are not read)."""
        return [c for c in self.columns if self.settings.declared(c) not in ("id", "ignored", "text")]

    def _start(self, name: str, series: pl.Series) -> Accumulator:
        declared = self.settings.declared(name)
        intended = self.intended.get(name)
        if intended is not None and series.dtype == pl.String and intended != pl.String:
            series = pl.Series(name, [], dtype=intended)  # a first piece read as text: the column's own type
        elif self.text_numbers and declared is None and (numbers := numbers_as_text(series)) is not None:
            # numbers the reader kept as text (1,234.5, $88, 54%, or a stray "n/a"): read as numbers,
            # the cells that are not counted as unparsable - as text, one "n/a" made them categories
            series = pl.Series(name, [], dtype=numbers.dtype)
        self.dtypes[name] = str(series.dtype)
        kind = DECLARED_TYPES.get(declared or "")
        if kind in ("numerical", "datetime"):
            return SketchAccumulator() if self.streaming else NumericAccumulator()
        # TVD's p-value permutes the rows: the exact engine keeps them for such columns
        row_order = not self.streaming and self.settings.keeps_row_order(name)
        if kind == "categorical":
            self.likes[name] = pl.String() if isinstance(series.dtype, pl.Categorical | pl.Enum) else series.dtype
            return CategoryAccumulator(row_order=row_order)
        dtype = pl.String() if isinstance(series.dtype, pl.Categorical | pl.Enum) else series.dtype
        label = declared in ("target", "prediction")
        return AutoAccumulator(dtype, label=label, streaming=self.streaming, row_order=row_order)

    def update(self, chunk: pl.DataFrame | Any) -> None:
        if not isinstance(chunk, pl.DataFrame):  # a pyarrow RecordBatch
            chunk = pl.from_arrow(chunk)
            assert isinstance(chunk, pl.DataFrame)
        chunk, empty = drop_empty_rows(chunk, self.needed)  # blank lines: no customer, as in a batch
        self.empty_rows += empty
        self.rows += chunk.height
        if self.joint is not None:
            self.joint.update(chunk)
        for name in self.needed:
            series = chunk[name]
            if self.settings.detect_ids and self.settings.declared(name) is None:
                self.order.setdefault(name, _OrderWatch()).update(series)
            accumulator = self.accumulators.get(name)
            if accumulator is None:
                accumulator = self.accumulators[name] = self._start(name, series)
            declared = DECLARED_TYPES.get(self.settings.declared(name) or "")
            if isinstance(accumulator, NumericAccumulator | SketchAccumulator):
                if declared == "datetime":
                    coerced = coerce_datetime(series, self.settings.date_format(name), undecided="error")
                else:
                    coerced = coerce_numerical(series)
                accumulator.update(coerced)
            elif isinstance(accumulator, CategoryAccumulator):
                accumulator.update(coerce_categorical(series, self.likes.get(name)))
            else:
                accumulator.update(series)

    def merge(self, other: ProfileBuilder) -> None:
        """Absorb a builder fed with the rows that follow this one's."""
        self.rows += other.rows
        self.empty_rows += other.empty_rows
        if self.joint is not None and other.joint is not None:
            self.joint.merge(other.joint)
        for name, accumulator in other.accumulators.items():
            mine = self.accumulators.get(name)
            if mine is None:
                self.accumulators[name] = accumulator
                self.dtypes[name] = other.dtypes[name]
                continue
            mine.merge(accumulator)  # type: ignore[arg-type]
        for name, like in other.likes.items():
            self.likes.setdefault(name, like)
        for name, watch in other.order.items():
            own = self.order.get(name)
            if own is None:
                self.order[name] = watch
            else:
                own.merge(watch)

    def finish(self) -> ReferenceProfile:
        columns: dict[str, ColumnProfile] = {}
        for name in self.columns:
            declared = self.settings.declared(name)
            role: Role = "feature"
            if declared in ("id", "ignored", "target", "prediction"):
                role = declared  # type: ignore[assignment]
            accumulator = self.accumulators.pop(name, None)
            column_type: ColumnType = "unknown"
            sample: NumericalSample | CategoricalSample | None = None
            if declared == "text":
                column_type = "text"
            elif isinstance(accumulator, AutoAccumulator):
                column_type, sample = accumulator.finish()  # type: ignore[assignment]
            elif isinstance(accumulator, NumericAccumulator | SketchAccumulator):
                column_type = DECLARED_TYPES[declared or "numerical"]
                sample = accumulator.finish()
            elif isinstance(accumulator, CategoryAccumulator):
                column_type = "categorical"
                sample = accumulator.finish()
            watch = self.order.get(name)
            if watch is not None and watch.possible and watch.direction and self.rows > 2:
                role, column_type = "id", "numerical"
                reason_override: str | None = IDENTIFIER_REASON
            elif name == self.settings.time_column and declared == "ignored":
                reason_override = TIME_COLUMN_REASON
            else:
                reason_override = None
            plan = ColumnPlan(name, role, column_type, declared is not None and name not in self.settings.inferred)
            reason = reason_override or _skip_reason(plan)
            if reason is None and sample is not None and _count(sample) == 0:
                reason = EMPTY_IN_REFERENCE
            if reason is None and sample is None:
                reason = "no value could be read"
            summary = summarize(sample) if sample is not None and reason is None else None
            columns[name] = ColumnProfile(plan, self.dtypes.get(name, "unread"), sample, summary, reason)
        joint = None
        if self.joint is not None:
            kinds = {
                n: c.plan.column_type for n, c in columns.items() if c.skip_reason is None and c.plan.role == "feature"
            }
            joint = encode(self.joint.finish(), kinds, self.settings.date_formats)
        return ReferenceProfile(self.rows, columns, joint=joint)


EMPTY_IN_REFERENCE = "no usable value in the reference (all missing or unparsable)"
"""Why a column is not tested when the reference has no value of it (the batch's values of it
are counted: :attr:`~churnops.monitor.batch.BatchTally.filled`)."""


def checked_codes(codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Codes read from a cache file, if they agree with the counts (else ValueError: the cache
    is ignored and rebuilt)."""
    if codes.ndim != 1 or codes.dtype.kind not in "iu" or codes.size != int(counts.sum()):
        raise ValueError("category codes do not match the counts")
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= counts.size):
        raise ValueError("category codes out of range")
    codes = codes.astype(np.uint32, copy=False)
    if not np.array_equal(np.bincount(codes, minlength=counts.size), counts):
        raise ValueError("category codes do not match the counts")
    return codes


def _count(sample: NumericalSample | CategoricalSample) -> int:
    return sample.count


TEXT_REASON = "text column: drift of free text is not tested"
TIME_COLUMN_REASON = (
    "the time column (drift.time_column, --time-column): its dates place the rows in periods; a batch of "
    "other dates than the reference's is not a drift"
)
UNKNOWN_REASON = "type could not be inferred (all values missing or unsupported type)"


def _skip_reason(plan: ColumnPlan) -> str | None:
    if plan.role == "id":
        return "identifier"
    if plan.role == "ignored":
        return "ignored by configuration"
    if plan.column_type == "text":
        return TEXT_REASON
    if plan.column_type == "unknown":
        return UNKNOWN_REASON
    return None


DECLARED_REASONS = {"id": "identifier", "ignored": "ignored", "text": "free text"}


def nothing_to_test(source: str, left_out: dict[str, str]) -> InputDataError:
    """The error of a reference none of whose columns can be tested (``left_out``: each column
    and why), instead of a verdict on nothing.

    >>> error = nothing_to_test("r.csv", {"customer_id": "identifier", "note": "free text"})
    >>> str(error).split(";")[0]
    'r.csv: nothing to monitor - every column is left out: customer_id (identifier), note (free text)'
    """
    shown = ", ".join(f"{one_line_short(name, 40)} ({why})" for name, why in list(left_out.items())[:8])
    more = f" and {len(left_out) - 8} more" if len(left_out) > 8 else ""
    example = next((c for c, why in left_out.items() if why != "identifier"), next(iter(left_out), "a column"))
    return InputDataError(
        f"{source}: nothing to monitor - every column is left out: {shown}{more}; name the columns to test in "
        f'[columns] (e.g. columns.categorical = ["{one_line_short(example, 40)}"]) or set columns.infer = false'
    )


def require_tested(profile: ReferenceProfile, source: str) -> None:
    """Refuse a profile with no tested column (a run would say "no drift" about nothing)."""
    if not profile.tested:
        raise nothing_to_test(source, {c.plan.name: c.skip_reason or "not tested" for c in profile.columns.values()})


def profile_chunks(columns: list[str], chunks: Iterable[pl.DataFrame], settings: MonitorSettings) -> ReferenceProfile:
    """Build a reference profile from a sequence of chunks of one table."""
    builder = ProfileBuilder(columns, settings)
    for chunk in chunks:
        builder.update(chunk)
    return builder.finish()


def build_profile(reference: pl.DataFrame, settings: MonitorSettings) -> ReferenceProfile:
    """Profile an in-memory reference table."""
    return profile_chunks(reference.columns, [reference], settings)
