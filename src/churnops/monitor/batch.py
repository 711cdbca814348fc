"""Accumulating a current batch, chunk by chunk, against a reference profile.

For every monitored column the builder keeps the sample the tests need and the counts the
quality checks need; for every row, how many of its cells failed a check and a hash of the row
(to find rows that repeat an earlier one). Builders fed with consecutive parts of a batch merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from numpy.typing import NDArray

from churnops.errors import InputDataError
from churnops.monitor.accumulate import MISSING, CategoryAccumulator, NumericAccumulator
from churnops.monitor.prepare import CategoricalSample, NumericalSample, category_exprs, coerce_datetime, numeric_exprs
from churnops.monitor.profile import ColumnProfile, ReferenceProfile
from churnops.monitor.settings import MonitorSettings

LABEL_TYPES: dict[type, pl.DataType] = {str: pl.String(), bool: pl.Boolean(), int: pl.Int64(), float: pl.Float64()}
HASH_SEED = 0
FLAG = "\x00unparsable"
"""Suffix of the helper column flagging cells that could not be parsed."""


def check_schema(profile: ReferenceProfile, columns: list[str]) -> list[str]:
    """Columns only the current batch has; raise when monitored columns are missing from it."""
    needed = [c.plan.name for c in profile.tested]
    missing = [name for name in needed if name not in columns]
    extra = [name for name in columns if name not in profile.columns]
    if missing and len(missing) == len(needed):
        shown = ", ".join(needed[:5]) + ("..." if len(needed) > 5 else "")
        raise InputDataError(f"the reference and current data have no monitored column in common (reference: {shown})")
    if missing:
        hint = f"; the current data has unexpected column(s) {', '.join(extra)} - renamed?" if extra else ""
        raise InputDataError(f"current data lacks column(s) {', '.join(missing)}{hint}")
    return extra


@dataclass
class ColumnTally:
    """What the batch builder collected for one monitored column."""

    profile: ColumnProfile
    accumulator: NumericAccumulator | CategoryAccumulator
    like: pl.DataType | None
    out_of_domain: int = 0
    sample: NumericalSample | CategoricalSample | None = None


@dataclass
class BatchTally:
    """Everything the drift and quality computations need from the current batch."""

    rows: int
    columns: dict[str, ColumnTally]
    extra_columns: list[str]
    row_failures: NDArray[np.uint16]
    row_hashes: NDArray[np.uint64]
    id_hashes: dict[str, NDArray[np.uint64]] = field(default_factory=dict)

    def duplicate_rows(self) -> NDArray[np.bool_]:
        """Rows that repeat an earlier row (by a 64-bit hash of all their cells)."""
        return repeats_earlier(self.row_hashes)


def repeats_earlier(hashes: NDArray[np.uint64]) -> NDArray[np.bool_]:
    """Mark every element equal to an earlier one.

    >>> repeats_earlier(np.array([5, 3, 5, 5, 3], dtype=np.uint64)).tolist()
    [False, False, True, True, True]
    """
    repeated = np.zeros(hashes.size, dtype=bool)
    ordered = np.sort(hashes)
    if not (ordered[1:] == ordered[:-1]).any():
        return repeated  # the usual case, without the cost of an argsort
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    repeated[order[1:][ordered[1:] == ordered[:-1]]] = True
    return repeated


class BatchBuilder:
    """Accumulates the current batch; :meth:`finish` returns a :class:`BatchTally`.

    Only the monitored and identifier columns are needed (:attr:`needed`); a row "repeats an
    earlier row" when it equals it in all of those - columns the configuration ignores are
    not read at all.
    """

    def __init__(self, profile: ReferenceProfile, columns: list[str], settings: MonitorSettings) -> None:
        self.extra = check_schema(profile, columns)
        self.settings = settings
        self.rows = 0
        self.tallies: dict[str, ColumnTally] = {}
        for column in profile.tested:
            plan = column.plan
            like = None
            if isinstance(column.sample, CategoricalSample) and column.sample.labels:
                like = LABEL_TYPES.get(type(column.sample.labels[0]))
            accumulator = CategoryAccumulator() if plan.column_type == "categorical" else NumericAccumulator()
            self.tallies[plan.name] = ColumnTally(column, accumulator, like)
        self.id_columns = [c for c in settings.id_columns if c in columns]
        self.needed = [c for c in columns if c in self.tallies or c in self.id_columns]
        self.failure_chunks: list[NDArray[np.uint16]] = []
        self.hash_chunks: list[NDArray[np.uint64]] = []
        self.id_chunks: dict[str, list[NDArray[np.uint64]]] = {c: [] for c in self.id_columns}

    def update(self, chunk: pl.DataFrame) -> None:
        """Absorb one chunk: every column is coerced in one polars pass, then counted in numpy."""
        self.rows += chunk.height
        failures = np.zeros(chunk.height, dtype=np.uint16)
        expressions: list[pl.Expr] = []
        values: dict[str, pl.Expr] = {}
        for name, tally in self.tallies.items():
            kind = tally.profile.plan.column_type
            if kind == "datetime":
                continue  # parsed below: dates need a second parsing attempt
            source = chunk.schema[name]
            if kind == "categorical":
                value, flag = category_exprs(name, source, tally.like)
                values[name] = value
                expressions.append(tally.accumulator.codes_for(value).alias(name))  # type: ignore[union-attr]
            else:
                value, flag = numeric_exprs(name, source)
                expressions.append(value.alias(name))
            if flag is not None:
                expressions.append(flag.alias(name + FLAG))
        coerced = chunk.select(expressions) if expressions else pl.DataFrame()
        for name, tally in self.tallies.items():
            unparsable = int(coerced[name + FLAG].sum()) if name + FLAG in coerced.columns else 0
            if isinstance(tally.accumulator, CategoryAccumulator):
                codes = coerced[name].to_numpy()
                value = values[name]
                tally.accumulator.take(
                    codes, unparsable, lambda mask, v=value: chunk.filter(pl.Series(mask)).select(v)[:, 0]
                )
                failures += codes == MISSING
                continue
            if tally.profile.plan.column_type == "datetime":
                dates = coerce_datetime(chunk[name])
                array, unparsable = dates.series.to_numpy(), dates.unparsable
            else:
                array = coerced[name].to_numpy()
            array = array.astype(np.float64, copy=False)
            tally.accumulator.update_values(array, unparsable)
            bad = ~np.isfinite(array)
            domain = self.settings.domains.get(name)
            if domain is not None:
                with np.errstate(invalid="ignore"):
                    outside = ~bad & ((array < domain[0]) | (array > domain[1]))
                tally.out_of_domain += int(outside.sum())
                bad |= outside
            failures += bad
        self.failure_chunks.append(failures)
        self.hash_chunks.append(chunk.select(self.needed).hash_rows(seed=HASH_SEED).to_numpy())
        for name in self.id_columns:
            ids = chunk[name].drop_nulls()
            self.id_chunks[name].append(ids.hash(seed=HASH_SEED).to_numpy())

    def merge(self, other: BatchBuilder) -> None:
        """Absorb a builder fed with the rows that follow this one's."""
        self.rows += other.rows
        for name, tally in self.tallies.items():
            theirs = other.tallies[name]
            tally.accumulator.merge(theirs.accumulator)  # type: ignore[arg-type]
            tally.out_of_domain += theirs.out_of_domain
        self.failure_chunks.extend(other.failure_chunks)
        self.hash_chunks.extend(other.hash_chunks)
        for name, chunks in other.id_chunks.items():
            self.id_chunks.setdefault(name, []).extend(chunks)

    def finish(self) -> BatchTally:
        for tally in self.tallies.values():
            tally.sample = tally.accumulator.finish()

        def joined(chunks: list[NDArray], dtype: type) -> NDArray:
            return np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)

        return BatchTally(
            rows=self.rows,
            columns=self.tallies,
            extra_columns=self.extra,
            row_failures=joined(self.failure_chunks, np.uint16),
            row_hashes=joined(self.hash_chunks, np.uint64),
            id_hashes={name: joined(chunks, np.uint64) for name, chunks in self.id_chunks.items()},
        )
