"""Accumulating a current batch, chunk by chunk, against a reference profile.

For every monitored column the builder keeps the sample the tests need and the counts the
quality checks need; for every row, how many of its cells failed a check and a hash of the row
(to find rows that repeat an earlier one, in bounded memory: :mod:`churnops.monitor.duplicates`).
Builders fed with any parts of a batch merge.

Two modes. The exact engine keeps every finite value of a numerical column (sorted, or as
distinct values with counts), every category's count and - for a TVD column of numbers - each
value's code in row order, so its statistics equal Evidently's. The streaming engine
(``streaming=True``) keeps mergeable summaries whose size does not grow with the rows
(:class:`~churnops.monitor.accumulate.SketchAccumulator`, category counts), reads Parquet
dictionaries and integers without converting them, and works on the columns of a chunk in
parallel threads (``jobs``).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from churnops.data.io import NULL_VALUES
from churnops.errors import InputDataError
from churnops.monitor.accumulate import CategoryAccumulator, NumericAccumulator, SketchAccumulator, count_integers
from churnops.monitor.duplicates import DuplicateCounter
from churnops.monitor.multivariate import JointSample, RowSampler, encode
from churnops.monitor.prepare import (
    BOOLEAN_SPELLING,
    MAX_LABEL_CHARS,
    CategoricalSample,
    NumericalSample,
    category_exprs,
    coerce_categorical,
    coerce_datetime,
    coerce_numerical,
    drop_empty_rows,
    missing_text,
    numeric_exprs,
)
from churnops.monitor.profile import ColumnProfile, ReferenceProfile
from churnops.monitor.settings import MonitorSettings

LABEL_TYPES: dict[type, pl.DataType] = {str: pl.String(), bool: pl.Boolean(), int: pl.Int64(), float: pl.Float64()}


def boolean_spelling(labels: list[Any]) -> tuple[str, str]:
    """The reference's own text for true and false (``True``/``False`` when it has none).

    >>> boolean_spelling(["yes", "true", "FALSE"]), boolean_spelling(["a"])
    (('true', 'FALSE'), ('True', 'False'))
    """
    found = {label.strip().lower(): label for label in labels if isinstance(label, str)}
    return (found.get("true", BOOLEAN_SPELLING[0]), found.get("false", BOOLEAN_SPELLING[1]))


def read_as_numbers_alters(label: Any) -> bool:
    """Whether a text label would change if a CSV reader took it for a number: a code written
    with leading zeros (``01040`` read as 1040), a sign or trailing zeros (``+5``, ``1.50``).

    >>> [read_as_numbers_alters(label) for label in ["01040", "1.50", "+5", "1040", "1.5", "A1", "", 7]]
    [True, True, True, False, False, False, False, False]
    """
    if not isinstance(label, str) or not label or not (label[0].isdigit() or label[0] in "+-."):
        return False
    try:
        number = float(label)
    except ValueError:
        return False
    if label.lstrip("+-").isdigit():
        return str(int(label)) != label
    return repr(number) != label


def text_columns(profile: ReferenceProfile) -> list[str]:
    """Category columns the reference holds as text that reading them as numbers would alter
    (codes with leading zeros, such as a Parquet file's ``01040``): a CSV batch's cells of them
    are read as text, so that they meet the reference's labels as written."""
    return [
        column.plan.name
        for column in profile.tested
        if isinstance(column.sample, CategoricalSample)
        and any(read_as_numbers_alters(label) for label in column.sample.labels)
    ]


HASH_SEED = 0
SAMPLE_BITS = 16
FLAG = "\x00unparsable"
"""Suffix of the helper column flagging cells that could not be parsed."""


def check_schema(profile: ReferenceProfile, columns: list[str]) -> list[str]:
    """Columns only the current batch has; raise when monitored columns are missing from it."""
    needed = [c.plan.name for c in profile.tested]
    # a batch without its labels is the usual case in production: the target is then not compared
    missing = [c.plan.name for c in profile.tested if c.plan.name not in columns and c.plan.role != "target"]
    extra = [name for name in columns if name not in profile.columns]
    if needed and not any(name in columns for name in needed):
        shown = ", ".join(needed[:5]) + ("..." if len(needed) > 5 else "")
        raise InputDataError(f"the reference and current data have no monitored column in common (reference: {shown})")
    for column in profile.tested:
        written = [name for name in extra if _same_name(name, column.plan.name)]
        if column.plan.role == "target" and column.plan.name not in columns and written:
            raise InputDataError(  # a batch without labels has no such column: this one was renamed
                f"current data lacks the target {column.plan.name}; it has {written[0]}, the same name written "
                f"otherwise: give the column the reference's name ({column.plan.name}) - its rate would not be "
                "compared, as in a batch that has no labels yet"
            )
    if missing:
        hint = (
            f"; it has {'a column' if len(extra) == 1 else 'columns'} the reference lacks: {', '.join(extra)} "
            "(if one was renamed, give it the "
            "reference's name)"
            if extra
            else ""
        )
        them = "it" if len(missing) == 1 else "them"
        listed = ", ".join(json.dumps(name, ensure_ascii=False) for name in missing)
        raise InputDataError(
            f"current data lacks {'the column' if len(missing) == 1 else 'the columns'} {', '.join(missing)}{hint}; "
            f"to monitor without {them}, add {them} to "
            f"columns.ignored (in churnops.toml, [columns] ignored = [{listed}])"
        )
    return extra


def _same_name(one: str, other: str) -> bool:
    """Whether two column names differ only by case, spaces, ``_`` or ``-``.

    >>> _same_name("Lapsed", "lapsed"), _same_name(" churn_flag", "Churn Flag"), _same_name("churn", "churned")
    (True, True, False)
    """
    import re

    return re.sub(r"[\s_-]+", "", one).casefold() == re.sub(r"[\s_-]+", "", other).casefold()


@dataclass
class ColumnTally:
    """What the batch builder collected for one monitored column."""

    profile: ColumnProfile
    accumulator: NumericAccumulator | SketchAccumulator | CategoryAccumulator
    like: pl.DataType | None
    spelling: tuple[str, str] = BOOLEAN_SPELLING
    """How the reference writes true and false, when it has the column as text."""
    out_of_domain: int = 0
    out_of_range: int = 0
    """Finite values outside the reference's [minimum, maximum] (numerical columns)."""
    sample: NumericalSample | CategoricalSample | None = None
    unparsable_examples: list[str] = field(default_factory=list)
    """Up to :data:`UNPARSABLE_EXAMPLES` distinct unparsable cells, as written, for the data
    quality check's message (``'12,5'``, ``'unknown'``)."""

    def note_unparsable(self, data: Any, date_format: str | None) -> None:
        """Keep examples of a chunk's unparsable cells of this column, while fewer than
        :data:`UNPARSABLE_EXAMPLES` are kept."""
        if len(self.unparsable_examples) < UNPARSABLE_EXAMPLES:
            self.keep_examples(unparsable_cells(_text_series(data), self, date_format).to_list())

    def keep_examples(self, cells: list[str]) -> None:
        """Add ``cells`` not kept yet to the examples, up to :data:`UNPARSABLE_EXAMPLES`."""
        for cell in cells:
            if cell not in self.unparsable_examples and len(self.unparsable_examples) < UNPARSABLE_EXAMPLES:
                self.unparsable_examples.append(cell)

    @property
    def reference_bounds(self) -> tuple[float, float] | None:
        reference = self.profile.sample
        if isinstance(reference, NumericalSample) and reference.count:
            return reference.low, reference.high
        return None


UNPARSABLE_EXAMPLES = 3
"""Unparsable cells kept per column, to show what they look like."""


def unparsable_cells(series: pl.Series, tally: ColumnTally, date_format: str | None) -> pl.Series:
    """The distinct cells of ``series`` (as text, in order) that the column's type does not read:
    what the data quality check counts as unparsable."""
    kind = tally.profile.plan.column_type
    if kind == "datetime":
        if series.dtype.is_temporal():
            return pl.Series([], dtype=pl.String)
        try:
            parsed = coerce_datetime(series, date_format, undecided="error").series
        except InputDataError:  # dates that read two ways in this chunk alone: no example
            return pl.Series([], dtype=pl.String)
        text = series.cast(pl.String)
        flag = parsed.is_null() & text.is_not_null() & ~missing_text(text)
        cells: pl.Series = text.filter(flag).unique(maintain_order=True).head(UNPARSABLE_EXAMPLES)
        return cells
    if kind == "categorical":
        _, expr = category_exprs("v", series.dtype, tally.like, tally.spelling)
    else:
        _, expr = numeric_exprs("v", series.dtype)
    if expr is None:
        return pl.Series([], dtype=pl.String)
    found = pl.DataFrame({"v": series}).filter(expr.fill_null(False))["v"]
    cells = found.cast(pl.String).unique(maintain_order=True).head(UNPARSABLE_EXAMPLES)
    return cells


@dataclass
class BatchTally:
    """Everything the drift and quality computations need from the current batch."""

    rows: int
    columns: dict[str, ColumnTally]
    extra_columns: list[str]
    failed_cells: int
    """Cells (over the monitored columns) that failed a check: missing, unparsable, infinite, out of domain."""
    duplicated_rows: int
    """Rows that repeat an earlier row (all monitored and identifier cells equal)."""
    duplicated_row_failures: int
    """Failed cells inside those repeated rows (so that they are not counted twice)."""
    duplicated_ids: dict[str, int]
    streaming: bool = False
    missing_ids: dict[str, int] = field(default_factory=dict)
    """Rows without an identifier, per identifier column: null, or text a CSV reads as missing
    (``''``, ``NA``...; :func:`identifier_keys`), never counted as repeated identifiers."""
    missing_id_text: dict[str, dict[str, int]] = field(default_factory=dict)
    """Of those, the cells written as such text, by text."""
    filled: dict[str, int] = field(default_factory=dict)
    """Columns without a value in the reference (not tested): the batch's values of each
    (:func:`present_cells`)."""
    duplicated_rows_estimated: bool = False
    """True when repeated rows and identifiers were counted on a sample of identifiers (see
    :class:`BatchBuilder`)."""
    segments: dict[tuple[str, str], BatchTally] = field(default_factory=dict)
    """Each segment's tally (``drift.segments``), for the segments the reference has."""
    segment_rows: dict[tuple[str, str], int] = field(default_factory=dict)
    """Rows of every segment value seen in the batch (those the reference lacks too)."""
    joint: JointSample | None = None
    """A sample of whole rows for the multivariate detectors (``drift.multivariate``)."""
    empty_rows: int = 0
    """Rows without a value in any column read, left out of everything else (:attr:`rows`
    excludes them; :func:`~churnops.monitor.prepare.drop_empty_rows`)."""


@dataclass
class CoercedChunk:
    """A chunk's monitored columns as the exact engine reads them: categories as a series,
    numbers and dates as float64 (NaN where missing or unparsable), with how many cells of each
    could not be parsed (and which, when any)."""

    height: int
    values: dict[str, pl.Series | NDArray[np.float64]] = field(default_factory=dict)
    unparsable: dict[str, int] = field(default_factory=dict)
    flags: dict[str, NDArray[np.bool_]] = field(default_factory=dict)
    """Which cells could not be parsed, for the columns with such cells (but dates)."""
    like: dict[str, tuple[pl.DataType | None, tuple[str, str]]] = field(default_factory=dict)
    """The type and boolean spelling categories were cast to."""
    read_together: set[str] = field(default_factory=set)
    """Columns whose reading depended on the chunk's values together (an inferred date format)."""
    short: set[str] = field(default_factory=set)
    """Text columns without a label longer than :data:`~churnops.monitor.prepare.MAX_LABEL_CHARS`."""

    def can_take(self, name: str, tally: ColumnTally) -> bool:
        """Whether the column read for ``tally`` (the same cast for categories) is, at some of
        the rows, what reading just those rows would give; not for an inferred date format."""
        if name not in self.values or name in self.read_together:
            return False
        if self.unparsable[name] and name not in self.flags:
            return False
        return name not in self.like or self.like[name] == (tally.like, tally.spelling)

    def rows(self, mask: pl.Series, indices: NDArray[np.intp], names: list[str]) -> CoercedChunk:
        """The columns ``names`` (see :meth:`can_take`) at some rows, given both as a mask and
        as their ascending ``indices`` (polars filters text by mask much faster than it gathers
        it; NumPy is faster with indices)."""
        out = CoercedChunk(int(indices.size))
        for name in names:
            values = self.values[name]
            out.values[name] = values.filter(mask) if isinstance(values, pl.Series) else values[indices]
            flags = self.flags.get(name)
            out.unparsable[name] = 0 if flags is None else int(np.count_nonzero(flags[indices]))
            if flags is not None and out.unparsable[name]:
                out.flags[name] = flags[indices]
        out.like = {name: self.like[name] for name in names if name in self.like}
        out.short = {name for name in names if name in self.short}
        return out

    def add(self, other: CoercedChunk) -> None:
        """The columns of ``other``, of the same rows, beside these."""
        self.values.update(other.values)
        self.unparsable.update(other.unparsable)
        self.flags.update(other.flags)
        self.like.update(other.like)
        self.read_together |= other.read_together
        self.short |= other.short


def _count_outside(values: NDArray[Any], low: float, high: float) -> int:
    if values.size == 0:
        return 0
    if low <= values.min() and values.max() <= high:
        return 0
    return int(np.count_nonzero((values < low) | (values > high)))


class BatchBuilder:
    """Accumulates the current batch; :meth:`finish` returns a :class:`BatchTally`.

    Only the monitored and identifier columns are needed (:attr:`needed`); a row "repeats an
    earlier row" when it equals it in all of those - columns the configuration ignores are
    not read at all. Chunks are polars DataFrames, or (streaming) pyarrow RecordBatches.
    """

    def __init__(
        self,
        profile: ReferenceProfile,
        columns: list[str],
        settings: MonitorSettings,
        streaming: bool = False,
        jobs: int = 1,
        row_sample: int = 1,
        count_rows: bool = True,
    ) -> None:
        self.extra = check_schema(profile, columns)
        self.count_rows = count_rows
        """False: no repeated-row count (a segment's builder; quality is about the whole batch)."""
        self.settings = settings
        self.streaming = streaming
        self.jobs = max(1, jobs)
        self.rows = 0
        self.empty_rows = 0
        self.tallies: dict[str, ColumnTally] = {}
        for column in profile.tested:
            plan = column.plan
            if plan.role == "target" and plan.name not in columns:
                continue  # no labels in this batch (yet)
            like = None
            spelling = BOOLEAN_SPELLING
            if isinstance(column.sample, CategoricalSample) and column.sample.labels:
                like = LABEL_TYPES.get(type(column.sample.labels[0]))
                spelling = boolean_spelling(column.sample.labels)
            accumulator: NumericAccumulator | SketchAccumulator | CategoryAccumulator
            if plan.column_type == "categorical":
                reference = column.sample
                row_order = not streaming and isinstance(reference, CategoricalSample) and reference.codes is not None
                accumulator = CategoryAccumulator(row_order=row_order)
            else:
                accumulator = SketchAccumulator() if streaming else NumericAccumulator()
            self.tallies[plan.name] = ColumnTally(column, accumulator, like, spelling)
        self.typed = {
            name
            for name, tally in self.tallies.items()
            if tally.profile.plan.column_type != "categorical" or tally.like not in (None, pl.String())
        }
        """Columns of numbers, dates and typed categories: text that stands for a missing value is
        a missing value in them (:func:`~churnops.monitor.prepare.missing_text`)."""
        self.text_columns = text_columns(profile)
        """Category columns a CSV batch's cells of are read as text (:func:`text_columns`)."""
        self.id_columns = [c for c in settings.id_columns if c in columns]
        self.filled = {
            name: 0 for name, column in profile.columns.items() if column.empty and name in columns and count_rows
        }
        """Columns the reference has no value of: the batch's values of each are counted."""
        self.needed = [c for c in columns if c in self.tallies or c in self.id_columns or c in self.filled]
        unread = {c for c in columns if settings.declared(c) == "ignored" and c not in self.needed}
        self.read_columns = [c for c in dict.fromkeys(columns) if c not in unread] if count_rows else list(self.needed)
        """The columns to read: when rows are counted, every column but those ``columns.ignored``
        names (never read) - a row repeats an earlier one when all those cells are equal, free text
        and identifiers found in the data included."""
        self.row_sample = row_sample if streaming and self.id_columns else 1
        """Repeated rows and identifiers are counted on 1 identifier in ``row_sample`` and scaled."""
        self.failed_cells = 0
        self.intended: dict[str, Any] = {}
        """The batch's column types as its reader decided them (``TableReader.intended``): a CSV
        piece read as text for a stray cell still hashes its numbers as numbers (exact engine)."""
        self.decimal_comma = False
        self.row_counter = DuplicateCounter()
        self.unkeyed_rows = DuplicateCounter()
        """Rows without an identifier, when rows are counted on a sample of identifiers: all of
        them are counted (they cannot repeat a row that has one)."""
        self.id_counters = {name: DuplicateCounter() for name in self.id_columns}
        self.missing_ids = dict.fromkeys(self.id_columns, 0)
        self.missing_id_text: dict[str, dict[str, int]] = {name: {} for name in self.id_columns}
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Any = None
        self._dictionaries: dict[str, tuple[Any, Any]] = {}
        self.joint: RowSampler | None = None
        if settings.multivariate and profile.joint is not None:
            self.joint = RowSampler([c for c in profile.joint.columns if c in self.tallies], settings.multivariate_rows)

    def _dictionary_info(self, name: str, dictionary: Any, make: Any) -> Any:
        """What ``make(dictionary)`` derives from a Parquet dictionary, computed once per
        dictionary (the batches of a row group share theirs)."""
        cached = self._dictionaries.get(name)
        if cached is not None and (cached[0] is dictionary or cached[0].equals(dictionary)):
            return cached[1]
        info = make(dictionary)
        self._dictionaries[name] = (dictionary, info)
        return info

    # --- exact engine --------------------------------------------------------------------

    def update(self, chunk: pl.DataFrame | Any) -> None:
        """Absorb one chunk (all rows of the needed columns)."""
        self.update_and_coerce(chunk)

    def update_and_coerce(self, chunk: pl.DataFrame | Any) -> CoercedChunk | None:
        """:meth:`update`, returning (exact engine) the chunk's monitored columns as they were
        read, which builders of some of its rows can take instead of reading them again
        (:meth:`update_coerced`); None for the streaming engine."""
        if self.count_rows:
            chunk = self.without_empty_rows(chunk)
        if self.joint is not None:
            self.joint.update(chunk)
        for name in self.filled:
            self.filled[name] += present_cells(_column(chunk, name))
        if self.streaming:
            self._update_streaming(chunk)
            return None
        if not isinstance(chunk, pl.DataFrame):
            chunk = pl.from_arrow(chunk)
            assert isinstance(chunk, pl.DataFrame)
        coerced = self.coerce(chunk)
        failures = self.update_coerced(coerced)
        for name, unparsable in coerced.unparsable.items():
            if unparsable:
                self.tallies[name].note_unparsable(chunk[name], self.settings.date_format(name))
        if self.count_rows:
            whole = chunk.select([name for name in self.read_columns if name in chunk.schema])
            typed = self.typed.union(self.id_columns)  # an identifier written '' or 'NA' is none
            numbers = {
                name: values
                for name, values in coerced.values.items()
                if isinstance(values, np.ndarray) and self.tallies[name].profile.plan.column_type == "numerical"
            }
            self.row_counter.add(row_hashes(whole, self.intended, self.decimal_comma, typed, numbers), failures)
        for name in self.id_columns:
            hashes, present, text = identifier_keys(chunk[name], self.intended.get(name))
            self._count_identifiers(name, hashes if present is None else hashes[present], present, text)
        return coerced

    def without_empty_rows(self, chunk: Any) -> Any:
        """``chunk`` without the rows that have no value in any column read, counted apart."""
        chunk, empty = drop_empty_rows(chunk, self.read_columns)
        self.empty_rows += empty
        return chunk

    def _count_identifiers(
        self, name: str, ids: NDArray[np.uint64], present: NDArray[np.bool_] | None, text: dict[str, int]
    ) -> None:
        """Count one chunk's identifiers (``ids``: the present ones) and the rows without one."""
        self.id_counters[name].add(ids)
        if present is not None:
            self.missing_ids[name] += int(present.size - np.count_nonzero(present))
        _add_counts(self.missing_id_text[name], text)

    def coerce(self, chunk: pl.DataFrame, names: list[str] | None = None) -> CoercedChunk:
        """The monitored columns of a chunk (or those ``names``) brought to their types."""
        tallies = self.tallies if names is None else {name: self.tallies[name] for name in names}
        expressions: list[pl.Expr] = []
        schema = chunk.schema
        for name, tally in tallies.items():
            kind = tally.profile.plan.column_type
            if kind == "datetime":
                continue  # parsed below: dates need a second parsing attempt
            source = schema[name]
            if kind == "categorical":
                value, flag = category_exprs(name, source, tally.like, tally.spelling)
            else:
                value, flag = numeric_exprs(name, source)
            expressions.append(value.alias(name))
            if flag is not None:
                expressions.append(flag.alias(name + FLAG))
        coerced = chunk.select(expressions) if expressions else pl.DataFrame()
        out = CoercedChunk(chunk.height)
        for name, tally in tallies.items():
            if tally.profile.plan.column_type == "datetime":
                dates = coerce_datetime(chunk[name], self.settings.date_format(name), undecided="error")
                out.values[name] = dates.series.to_numpy().astype(np.float64, copy=False)
                out.unparsable[name] = dates.unparsable
                if dates.inferred:
                    out.read_together.add(name)
                continue
            if name + FLAG in coerced.columns:
                flags = coerced[name + FLAG]
                out.unparsable[name] = int(flags.sum())
                if out.unparsable[name]:
                    out.flags[name] = flags.fill_null(False).to_numpy()
            else:
                out.unparsable[name] = 0
            if isinstance(tally.accumulator, CategoryAccumulator):
                out.values[name] = coerced[name]
                out.like[name] = (tally.like, tally.spelling)
            else:
                out.values[name] = coerced[name].to_numpy().astype(np.float64, copy=False)
        text = [name for name, value in out.values.items() if isinstance(value, pl.Series) and value.dtype == pl.String]
        if text and coerced.height:  # the longest label of every text column, in one pass
            longest = coerced.select(pl.col(text).str.len_bytes().max()).row(0)
            out.short = {name for name, size in zip(text, longest, strict=True) if (size or 0) <= MAX_LABEL_CHARS}
        return out

    def update_coerced(self, coerced: CoercedChunk) -> NDArray[np.uint16]:
        """Absorb a chunk's monitored columns already read (:meth:`coerce`); each row's failed cells."""
        self.rows += coerced.height
        failures = np.zeros(coerced.height, dtype=np.uint16)
        for name, tally in self.tallies.items():
            values, unparsable = coerced.values[name], coerced.unparsable[name]
            if isinstance(tally.accumulator, CategoryAccumulator):
                assert isinstance(values, pl.Series)
                tally.accumulator.add_series(values, unparsable, short=name in coerced.short)
                if values.null_count():
                    failures += values.is_null().to_numpy()
                continue
            assert isinstance(values, np.ndarray)
            tally.accumulator.update_values(values, unparsable)
            bad = self._numeric_checks(name, tally, values)
            if bad is not None:
                failures += bad
        self.failed_cells += int(failures.sum(dtype=np.int64))
        return failures

    def _numeric_checks(
        self,
        name: str,
        tally: ColumnTally,
        array: NDArray[Any],
        finite: NDArray[np.bool_] | None = None,
        low: float | None = None,
        high: float | None = None,
    ) -> NDArray[np.bool_] | None:
        """Per-row failures of one numerical chunk (not finite, out of domain; None when no
        cell failed); counts the values outside the domain and outside the reference's range.

        ``finite`` (None: every value is finite) and the finite ``low``/``high`` are computed
        here unless the caller already has them.
        """
        if low is None:
            if array.dtype.kind == "f":
                mask = np.isfinite(array)
                finite = None if mask.all() else mask
            values = array if finite is None else array[finite]
            if values.size == 0:
                return None if finite is None else ~finite
            low, high = float(values.min()), float(values.max())
        else:
            values = array if finite is None else array[finite]
        bad = None if finite is None else ~finite
        if values.size == 0:
            return bad
        assert high is not None
        bounds = tally.reference_bounds
        if bounds is not None and (low < bounds[0] or high > bounds[1]):
            tally.out_of_range += int(np.count_nonzero((values < bounds[0]) | (values > bounds[1])))
        domain = self.settings.domains.get(name)
        if domain is not None and (low < domain[0] or high > domain[1]):
            with np.errstate(invalid="ignore"):
                outside = (array < domain[0]) | (array > domain[1])
            if finite is not None:
                outside &= finite
            tally.out_of_domain += int(np.count_nonzero(outside))
            bad = outside if bad is None else bad | outside
        return bad

    # --- streaming engine ----------------------------------------------------------------

    def _update_streaming(self, chunk: pl.DataFrame | Any) -> None:
        height = chunk.height if isinstance(chunk, pl.DataFrame) else chunk.num_rows
        self.rows += height

        def column(name: str) -> Any:
            return chunk[name] if isinstance(chunk, pl.DataFrame) else chunk.column(name)

        def work(name: str) -> tuple[str, NDArray[np.bool_] | None, Any]:
            tally = self.tallies.get(name)
            if name in self.id_counters:
                return name, None, identifier_keys(column(name), self.intended.get(name))
            if tally is None:  # a column only part of the rows (repeated rows)
                return name, None, _typed_keys(column(name), self.intended.get(name))
            before = tally.accumulator.unparsable
            categories = tally.profile.plan.column_type == "categorical"
            if categories:
                bad, keys = self._absorb_categories(tally, column(name))
            else:
                bad, keys = self._absorb_numbers(name, tally, column(name))
            if tally.accumulator.unparsable == before:
                return name, bad, (keys if categories else _number_keys(keys))
            # some cells did not parse: examples of them, and their text keys their row
            tally.note_unparsable(column(name), self.settings.date_format(name))
            if categories:
                flat = _take(keys, None)
                return name, bad, _written_keys(flat, flat == NULL_KEY, column(name))
            return name, bad, _number_keys(keys, column(name))

        if self.jobs > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="churnops-column")
            results = list(self._pool.map(work, self._streamed(chunk)))
        else:
            results = [work(name) for name in self._streamed(chunk)]
        if self._pool is None:
            self._absorb_rows(results, height)
            return
        # count this chunk's identifiers and rows while the next chunk's columns are worked on
        self._wait_pending()
        self._pending = self._pool.submit(self._absorb_rows, results, height)

    def _streamed(self, chunk: Any) -> list[str]:
        """The columns of ``chunk`` the streaming engine works on: the monitored ones and
        identifiers, and (rows counted) the others for the rows' hashes."""
        if not self.count_rows:
            return self.needed
        names = chunk.schema.names if not isinstance(chunk, pl.DataFrame) else chunk.columns
        return [name for name in self.read_columns if name in names]

    def _absorb_rows(self, results: list[tuple[str, NDArray[np.bool_] | None, Any]], height: int) -> None:
        """Count one chunk's failed cells, identifiers and rows (one such task at a time)."""
        failures = np.zeros(height, dtype=np.uint16)
        parts: dict[str, Any] = {}
        keyed: NDArray[np.bool_] | None = None  # the rows with an identifier (None: all)
        for name, bad, hashed in results:
            if name not in self.tallies and name not in self.id_counters:  # only part of the rows
                parts[name] = hashed
                continue
            if name in self.id_counters:
                hashes, present, text = hashed
                parts[name] = hashes
                if name == self.id_columns[0]:
                    keyed = present
                ids = hashes[present] if present is not None else hashes
                if self.row_sample > 1:  # the same sample of identifiers as the rows'
                    ids = ids[_in_sample(ids, self.row_sample)]
                self._count_identifiers(name, ids, present, text)
                continue
            if bad is not None:
                failures += bad
            parts[name] = hashed
        self.failed_cells += int(failures.sum(dtype=np.int64))
        if not self.count_rows:
            return
        if self.row_sample > 1:
            # Repeated rows share their identifier: hashing the rows of a sample of identifiers
            # finds a sample of the repeated rows (every copy of a row is in or out together).
            # The rows without one are all counted, apart.
            sampled = _in_sample(parts[self.id_columns[0]], self.row_sample)
            if keyed is not None:
                unkeyed = np.flatnonzero(~keyed)
                rows = {name: _take(values, unkeyed) for name, values in parts.items()}
                self.unkeyed_rows.add(pl.DataFrame(rows).hash_rows(seed=HASH_SEED).to_numpy(), failures[unkeyed])
                sampled &= keyed
            keep = np.flatnonzero(sampled)
            parts = {name: _take(values, keep) for name, values in parts.items()}
            failures, height = failures[keep], int(keep.size)
        else:
            parts = {name: _take(values, None) for name, values in parts.items()}
        hashes = pl.DataFrame(parts).hash_rows(seed=HASH_SEED).to_numpy() if parts else np.zeros(height, np.uint64)
        self.row_counter.add(hashes, failures)

    def _wait_pending(self) -> None:
        pending = getattr(self, "_pending", None)
        if pending is not None:
            pending.result()
            self._pending = None

    def _absorb_numbers(self, name: str, tally: ColumnTally, data: Any) -> tuple[NDArray[np.bool_] | None, Any]:
        accumulator = tally.accumulator
        assert isinstance(accumulator, SketchAccumulator)
        datetime = tally.profile.plan.column_type == "datetime"
        if _is_dictionary(data):
            parsed, unparsable_entry, whole = self._dictionary_info(
                name, data.dictionary, lambda d: _parse_dictionary(d, datetime, self.settings.date_format(name), name)
            )
            index = _dictionary_index(data)
            unparsable = 0
            if unparsable_entry.any():
                unparsable = int(np.bincount(index, minlength=len(parsed))[:-1][unparsable_entry].sum())
            if whole is not None:  # every entry a whole number (dates): count integers, fast
                present = whole[1][index]
                ints = whole[0][index]
                if present.all():
                    low, high = accumulator.update_integers(ints)
                    return self._numeric_checks(name, tally, ints, None, low, high), ints
                values = ints[present]
                low, high = accumulator.update_integers(
                    values, int(present.size - values.size) - unparsable, unparsable
                )
                raw = parsed[index]
                return self._numeric_checks(name, tally, raw, present, low, high), raw
            raw = parsed[index]
        else:
            # numbers in a date column are no dates (20240101 is not day 20,240,101), as in the exact engine
            ints = None if datetime else _arrow_integers(data)
            if ints is not None:
                low, high = accumulator.update_integers(ints)
                return self._numeric_checks(name, tally, ints, None, low, high), ints
            floats = None if datetime else _arrow_floats(data)
            if floats is not None:
                finite, low, high = accumulator.update_values(floats, 0)
                return self._numeric_checks(name, tally, floats, finite, low, high), floats
            series = data if isinstance(data, pl.Series) else pl.from_arrow(data)
            assert isinstance(series, pl.Series)
            dates = series.dtype == pl.Date
            if dates and datetime:  # dates as day numbers (a date in a column of numbers is no number)
                series = series.cast(pl.Int32)
            # numbers in a date column are no dates: read as the exact engine reads them
            numbers = (series.dtype.is_float() or series.dtype.is_integer()) and (dates or not datetime)
            if numbers and series.dtype.is_integer() and series.null_count() == 0:
                ints = series.to_numpy()
                low, high = accumulator.update_integers(ints)
                return self._numeric_checks(name, tally, ints, None, low, high), ints
            unparsable = 0
            if numbers:
                raw = series.cast(pl.Float64).to_numpy()
            else:
                coerced = (
                    coerce_datetime(series, self.settings.date_format(name), undecided="error")
                    if datetime
                    else coerce_numerical(series, dates=False)
                )
                raw, unparsable = coerced.series.to_numpy().astype(np.float64, copy=False), coerced.unparsable
        finite, low, high = accumulator.update_values(raw, unparsable)
        return self._numeric_checks(name, tally, raw, finite, low, high), raw

    def _absorb_categories(self, tally: ColumnTally, data: Any) -> tuple[NDArray[np.bool_] | None, Any]:
        accumulator = tally.accumulator
        assert isinstance(accumulator, CategoryAccumulator)
        if _is_dictionary(data):
            codes, unparsable_entry, entry_hash = self._dictionary_info(
                tally.profile.plan.name,
                data.dictionary,
                lambda d: _code_dictionary(d, accumulator, tally.like, tally.spelling),
            )
            index = _dictionary_index(data)
            counts = np.bincount(index, minlength=len(codes))
            valid = codes >= 0
            unparsable = int(counts[:-1][unparsable_entry].sum()) if unparsable_entry.any() else 0
            failed = int(counts[~valid].sum())
            accumulator.add_code_counts(codes[valid], counts[valid], failed, unparsable)
            return (~valid[index] if failed else None), Lookup(entry_hash, index)
        ints = _arrow_integers(data) if tally.like is None or tally.like == pl.Int64 else None
        if ints is not None:
            labels, counts = count_integers(ints)
            accumulator.add_label_counts(labels.tolist(), counts, 0, 0)
            return None, _keys_of(ints)
        series = data if isinstance(data, pl.Series) else pl.from_arrow(data)
        assert isinstance(series, pl.Series)
        if series.dtype.is_integer() and (tally.like is None or tally.like == pl.Int64):
            accumulator.add_series(series)
            return series.is_null().to_numpy(), _keys_of(series)
        coerced = coerce_categorical(series, tally.like, tally.spelling)
        values = coerced.series
        accumulator.add_series(values, coerced.unparsable)
        return values.is_null().to_numpy(), _keys_of(values)

    # --- both ----------------------------------------------------------------------------

    def merge(self, other: BatchBuilder) -> None:
        """Absorb a builder fed with other rows of the same batch."""
        self._wait_pending()
        other._wait_pending()
        self.rows += other.rows
        self.empty_rows += other.empty_rows
        if self.joint is not None and other.joint is not None:
            self.joint.merge(other.joint)
        for name, tally in self.tallies.items():
            theirs = other.tallies[name]
            tally.accumulator.merge(theirs.accumulator)  # type: ignore[arg-type]
            tally.out_of_domain += theirs.out_of_domain
            tally.out_of_range += theirs.out_of_range
            tally.keep_examples(theirs.unparsable_examples)
        self.failed_cells += other.failed_cells
        for name, n in other.filled.items():
            self.filled[name] = self.filled.get(name, 0) + n
        self.row_counter.merge(other.row_counter)
        self.unkeyed_rows.merge(other.unkeyed_rows)
        for name, counter in other.id_counters.items():
            self.id_counters.setdefault(name, DuplicateCounter()).merge(counter)
            self.missing_ids[name] = self.missing_ids.get(name, 0) + other.missing_ids.get(name, 0)
            _add_counts(self.missing_id_text.setdefault(name, {}), other.missing_id_text.get(name, {}))

    def finish(self) -> BatchTally:
        self._wait_pending()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        for tally in self.tallies.values():
            tally.sample = tally.accumulator.finish()
        repeated, repeated_failures = self.row_counter.finish()
        unkeyed, unkeyed_failures = self.unkeyed_rows.finish()
        duplicated_ids = {name: counter.finish()[0] for name, counter in self.id_counters.items()}
        estimated = self.row_sample > 1
        if estimated:  # counted on 1 identifier in row_sample (every copy in or out together)
            repeated, repeated_failures = repeated * self.row_sample, repeated_failures * self.row_sample
            duplicated_ids = {name: n * self.row_sample for name, n in duplicated_ids.items()}
        repeated, repeated_failures = repeated + unkeyed, repeated_failures + unkeyed_failures
        return BatchTally(
            rows=self.rows,
            columns=self.tallies,
            extra_columns=self.extra,
            failed_cells=self.failed_cells,
            duplicated_rows=repeated,
            duplicated_row_failures=repeated_failures,
            duplicated_ids=duplicated_ids,
            missing_ids=dict(self.missing_ids),
            missing_id_text={name: dict(text) for name, text in self.missing_id_text.items() if text},
            filled=dict(self.filled),
            streaming=self.streaming,
            duplicated_rows_estimated=estimated,
            joint=self._joint(),
            empty_rows=self.empty_rows,
        )

    def _joint(self) -> JointSample | None:
        if self.joint is None:
            return None
        kinds = {name: self.tallies[name].profile.plan.column_type for name in self.joint.columns}
        return encode(self.joint.finish(), kinds, self.settings.date_formats)

    def __getstate__(self) -> dict[str, Any]:
        self._wait_pending()
        state = dict(self.__dict__)
        state["_pool"] = None
        state["_pending"] = None
        return state


@dataclass(frozen=True)
class Lookup:
    """Per-row values given as a table and each row's index into it (gathered only when needed)."""

    table: NDArray[Any]
    index: NDArray[np.integer]


def _number_keys(values: Any, text: Any = None) -> Any:
    """A column of numbers (or day numbers) as the streaming engine's row hashes take it: each
    value's float64 bits, whatever piece of the batch held it as integers or as floats (5 and
    5.0 are one value); with ``text`` (the column as read, when some of its cells did not
    parse), each such cell's key is its text's, so that ``foo`` and ``bar`` are not one value.

    >>> a, b = _number_keys(np.array([5, 7])), _number_keys(np.array([5.0, np.nan]))
    >>> bool(a[0] == b[0]), bool(_number_keys(np.array([np.nan]), pl.Series(["foo"]))[0] == b[1])
    (True, False)
    """
    if isinstance(values, Lookup) and text is None:
        return Lookup(_number_keys(values.table), values.index)
    numbers = np.asarray(_take(values, None), dtype=np.float64) + 0.0  # -0.0 is 0.0
    unread = np.isnan(numbers)
    keys = numbers.view(np.uint64)
    if unread.any():  # one key for every NaN (a missing value), whatever its bits
        keys = np.where(unread, np.uint64(0), keys)
    if text is None:
        return keys
    return _written_keys(keys, unread, text)


def _written_keys(keys: NDArray[np.uint64], unread: NDArray[np.bool_], text: Any) -> NDArray[np.uint64]:
    """``keys`` with those of the ``unread`` cells (no value: missing or unparsable) that hold
    text other than a missing value's replaced by their text's key: two cells that do not
    parse (``foo``, ``bar``) are two values, not one missing value."""
    written, present = _stable_hash(text)
    series = _text_series(text)
    if present is not None:
        unread &= present
    if series.dtype == pl.String:
        unread &= ~missing_text(series).fill_null(False).to_numpy()
    return np.where(unread, written, keys)


def _in_sample(hashes: NDArray[np.uint64], row_sample: int) -> NDArray[np.bool_]:
    """Which keys are in the 1-in-``row_sample`` sample (by their top bits: a copy of a key is
    always in or out with it)."""
    return (hashes >> np.uint64(64 - SAMPLE_BITS)) < np.uint64((1 << SAMPLE_BITS) // row_sample)


def row_hashes(
    frame: pl.DataFrame,
    intended: dict[str, Any],
    decimal_comma: bool = False,
    typed_columns: Collection[str] = (),
    parsed: dict[str, NDArray[np.float64]] | None = None,
) -> NDArray[np.uint64]:
    """A 64-bit hash of each row of ``frame``, the same for equal rows whatever piece of a CSV
    they were read in: numbers hash alike as integers or floats; a column the reader typed
    (``intended``) but kept as text in this piece (for a stray cell) hashes its numbers and
    booleans as the typed pieces do, and the cells
    that do not parse as their text; a missing cell is missing whatever its type - in the
    columns of numbers, dates and typed categories (``typed_columns``), also text that stands for a
    missing value (``NA``, ``null``...: :func:`~churnops.monitor.prepare.missing_text`). A column
    of numbers held as text (``parsed``: its values as the monitoring read them, NaN where none)
    hashes the numbers it holds: ``5``, ``5.0`` and ``$5`` are one value, as in the streaming
    engine, and a cell that does not parse hashes as its text."""
    if not frame.width:
        return np.zeros(frame.height, np.uint64)
    names = frame.columns
    parsed = {name: values for name, values in (parsed or {}).items() if frame.schema.get(name) == pl.String}
    if parsed:
        frame = frame.with_columns(pl.Series(f"{name}\x00parsed", values) for name, values in parsed.items())
    expressions = []
    for name in names:
        dtype = frame.schema[name]
        column = pl.col(name)
        target = intended.get(name)
        # a number hashes alike whatever its type in this piece (5 and 5.0 are one value; big
        # integers stay integers: 2**53 + 1 is not 2**53)
        if dtype.is_integer():
            hashed = (column if dtype == pl.Int64 else column.cast(pl.Int64)).hash(seed=HASH_SEED)
        elif dtype.is_float():
            hashed = _whole_key(column)
        else:
            hashed = column.hash(seed=HASH_SEED)
        if not frame[name].null_count() and _plain_key(dtype, name, target, parsed, typed_columns):
            expressions.append(hashed.alias(name))  # nothing missing to key as such (a third fewer passes)
            continue
        if name in parsed:
            number = pl.col(f"{name}\x00parsed")
            hashed = pl.when(number.is_not_nan()).then(_whole_key(number)).otherwise(hashed)
        elif dtype == pl.String and target is not None and (target.is_numeric() or target == pl.Boolean):
            text = column.str.strip_chars()
            if target == pl.Boolean:
                word = text.str.to_lowercase()
                typed = pl.when(word == "true").then(True).when(word == "false").then(False)
            else:
                if decimal_comma and target.is_float():
                    text = text.str.replace(",", ".", literal=True)
                typed = text.cast(target, strict=False)
            key = typed.hash(seed=HASH_SEED) if target == pl.Boolean else _whole_key(typed)
            hashed = pl.when(typed.is_not_null()).then(key).otherwise(hashed)
        missing = column.is_null()
        if dtype.is_float():
            missing = missing | column.is_nan()
        if dtype == pl.String and name in typed_columns:
            missing = missing | missing_text(column)
        expressions.append(pl.when(missing).then(pl.lit(0, pl.UInt64)).otherwise(hashed).alias(name))
    return frame.select(expressions).hash_rows(seed=HASH_SEED).to_numpy()


def _take(values: Any, rows: NDArray[np.intp] | None) -> Any:
    """``values`` at ``rows`` (all rows when None); a :class:`Lookup` gathers just those."""
    if isinstance(values, Lookup):
        return values.table[values.index if rows is None else values.index[rows]]
    if rows is None:
        return values
    if isinstance(values, pl.Series):
        return values.gather(rows)
    return values[rows]


def _arrow_floats(data: Any) -> NDArray[np.float64] | None:
    """An Arrow float64 array as NumPy, nulls as NaN (no copy without nulls), else None."""
    import pyarrow as pa

    if isinstance(data, pa.Array) and pa.types.is_float64(data.type):
        if data.null_count == 0:
            return _primitive_view(data)
        import pyarrow.compute as pc

        return _primitive_view(pc.fill_null(data, float("nan")))
    return None


def _arrow_integers(data: Any) -> NDArray[np.integer] | None:
    """An Arrow integer array without nulls as NumPy (no copy), else None."""
    import pyarrow as pa

    if isinstance(data, pa.Array) and pa.types.is_integer(data.type) and data.null_count == 0:
        return _primitive_view(data)
    return None


def _primitive_view(data: Any) -> NDArray[Any]:
    """A null-free Arrow array of fixed-width numbers as a read-only NumPy view of its buffer
    (Arrow's own ``to_numpy`` goes through its pandas shim, importing pandas on first use)."""
    dtype = np.dtype(str(data.type))  # int8..uint64 and "double" (float64) only reach here
    return np.frombuffer(data.buffers()[1], dtype=dtype, count=len(data), offset=data.offset * dtype.itemsize)


def _is_dictionary(data: Any) -> bool:
    import pyarrow as pa

    return isinstance(data, pa.DictionaryArray)


def _dictionary_index(data: Any) -> NDArray[np.integer]:
    """A dictionary array's indices (no copy when there is no null), nulls mapped to
    ``len(dictionary)``."""
    import pyarrow.compute as pc

    indices = data.indices
    if indices.null_count:
        indices = pc.fill_null(indices, len(data.dictionary))
    return _primitive_view(indices)


def _parse_dictionary(
    dictionary: Any, datetime: bool, date_format: str | None = None, name: str = ""
) -> tuple[NDArray[np.float64], NDArray[np.bool_], tuple[NDArray[np.int64], NDArray[np.bool_]] | None]:
    """Each dictionary entry as a number (or day number), NaN appended for nulls; which entries
    do not parse; and, when every parsed entry is a whole number (dates), the entries as
    integers with a flag of the usable ones."""
    entries = pl.from_arrow(dictionary)
    assert isinstance(entries, pl.Series)
    entries = entries.alias(name) if name else entries  # the column's name, for what an error says
    coerced = coerce_datetime(entries, date_format, undecided="error") if datetime else coerce_numerical(entries)
    parsed = np.append(coerced.series.cast(pl.Float64).to_numpy(), np.nan)
    blank = entries.is_null() | missing_text(entries.cast(pl.String))
    usable = np.isfinite(parsed)
    whole = None
    if usable.any() and np.all(parsed[usable] == np.round(parsed[usable])) and np.abs(parsed[usable]).max() < 2**53:
        whole = (np.where(usable, parsed, 0).astype(np.int64), usable)
    return parsed, np.isnan(parsed[:-1]) & ~blank.to_numpy(), whole


def _code_dictionary(
    dictionary: Any, accumulator: CategoryAccumulator, like: pl.DataType | None, spelling: tuple[str, str]
) -> tuple[NDArray[np.int64], NDArray[np.bool_], NDArray[np.uint64]]:
    """Each dictionary entry's category code (-1 when missing or not of the column's type, and
    for the null slot appended), which entries do not fit the type, and each entry's hash."""
    entries = pl.from_arrow(dictionary)
    assert isinstance(entries, pl.Series)
    value, flag = category_exprs("v", entries.dtype, like, spelling)
    read = pl.DataFrame({"v": entries}).select(value.alias("v"), (pl.lit(False) if flag is None else flag).alias("f"))
    coerced = read["v"]
    codes = np.append(accumulator.codes_of(coerced), -1)
    hashes = np.append(_keys_of(coerced), NULL_KEY)
    return codes, read["f"].fill_null(False).to_numpy(), hashes


def _column(chunk: Any, name: str) -> Any:
    """A column of a polars or Arrow chunk."""
    return chunk[name] if isinstance(chunk, pl.DataFrame) else chunk.column(name)


def _text_series(data: Any) -> pl.Series:
    """A polars or Arrow column as a polars series, categories as their text (as a Parquet
    dictionary's entries are)."""
    series = data if isinstance(data, pl.Series) else pl.from_arrow(data)
    assert isinstance(series, pl.Series)
    return series.cast(pl.String) if isinstance(series.dtype, pl.Categorical | pl.Enum) else series


def _add_counts(into: dict[str, int], counts: dict[str, int]) -> None:
    """Add ``counts`` (by text) to ``into``."""
    for value, n in counts.items():
        into[value] = into.get(value, 0) + n


def present_cells(data: Any) -> int:
    """Cells of a column that hold a value: not null, not NaN, not text that stands for a
    missing value (``''``, ``NA``...: :func:`~churnops.monitor.prepare.missing_text`).

    >>> present_cells(pl.Series(["a", "", None, " NA ", "b"])), present_cells(pl.Series([1.0, float("nan"), None]))
    (2, 1)
    """
    series = _text_series(data)
    if series.dtype == pl.String:
        return int((~missing_text(series)).sum())  # nulls are not counted
    if series.dtype.is_float():
        return int(series.is_not_nan().sum())
    return series.len() - series.null_count()


def identifier_keys(
    data: Any, intended: pl.DataType | None = None
) -> tuple[NDArray[np.uint64], NDArray[np.bool_] | None, dict[str, int]]:
    """An identifier column's keys, which rows hold an identifier (None when all do), and the
    cells written as text that stands for a missing value (``''``, ``NA``...), by text: such a
    cell is no identifier in any format, as a null or a NaN is none.

    A key depends on the identifier, not on how a piece of the file holds it: whole numbers key
    alike as integers of any width, as whole floats, or as text in a CSV piece read as text for
    a stray cell (``intended``: the column's type as the reader decided it); a Parquet
    dictionary's entries key as the same text would.

    >>> keys, present, text = identifier_keys(pl.Series(["C1", "", None, "NA", "", "C1"]))
    >>> present.tolist(), text
    ([True, False, False, False, False, True], {'': 2, 'NA': 1})
    >>> a, b = identifier_keys(pl.Series([7, None], dtype=pl.Int32)), identifier_keys(pl.Series(["7"]), pl.Int64())
    >>> bool(a[0][0] == b[0][0] == identifier_keys(pl.Series([7.0]))[0][0])
    True
    """
    if not isinstance(data, pl.Series) and _is_dictionary(data):  # (not importing Arrow for the exact engine)
        entries = pl.from_arrow(data.dictionary)
        assert isinstance(entries, pl.Series)
        keys, usable, _ = identifier_keys(entries, intended)
        usable = np.append(np.ones(len(entries), bool) if usable is None else usable, False)
        index = _dictionary_index(data)
        present = usable[index]
        text: dict[str, int] = {}
        if entries.dtype == pl.String:
            blank = missing_text(entries).fill_null(False).to_numpy()
            if blank.any():
                counts = np.bincount(index, minlength=len(entries) + 1)[:-1]
                text = {str(entries[int(i)]): int(counts[i]) for i in np.flatnonzero(blank & (counts > 0))}
        return np.append(keys, NULL_KEY)[index], (None if present.all() else present), text
    series = _text_series(data)
    if series.dtype.is_integer():  # the usual identifier: no copy of the column beyond its keys
        keys = (series if series.dtype == pl.Int64 else series.cast(pl.Int64)).hash(seed=HASH_SEED).to_numpy()
        if not series.null_count():
            return keys, None, {}
        present_ints = series.is_not_null().to_numpy()
        return np.where(present_ints, keys, NULL_KEY), present_ints, {}
    frame = pl.DataFrame({"v": series})
    value = pl.col("v")
    text = {}
    present = value.is_not_null()
    if series.dtype == pl.String:
        stripped = value.str.strip_chars()
        marker = stripped.is_in(NULL_VALUES).fill_null(False)
        present = present & ~marker
        found = frame.filter(marker)["v"].value_counts(sort=True)
        text = {str(cell): int(n) for cell, n in found.iter_rows()}
        key = value.hash(seed=HASH_SEED)
        if intended is not None and intended.is_numeric():  # a CSV piece read as text for a stray cell
            typed = _whole_key(stripped.cast(pl.Float64 if intended.is_float() else intended, strict=False))
            key = pl.when(typed.is_not_null()).then(typed).otherwise(key)
    elif series.dtype.is_float():
        present = present & value.is_not_nan()
        key = _whole_key(value)
    else:
        key = value.hash(seed=HASH_SEED)
    found_keys = frame.select(key.fill_null(0).alias("k"), present.fill_null(False).alias("p"))
    present_rows = found_keys["p"].to_numpy()
    if present_rows.all():
        return found_keys["k"].to_numpy(), None, text
    return np.where(present_rows, found_keys["k"].to_numpy(), NULL_KEY), present_rows, text


def _plain_key(
    dtype: pl.DataType, name: str, target: Any, parsed: Collection[str], typed_columns: Collection[str]
) -> bool:
    """Whether a column without nulls has no missing value either, its hash as it is: integers,
    and text that is no number's or typed category's (where ``NA`` would stand for a missing cell)."""
    if dtype.is_integer():
        return True
    if dtype != pl.String or name in parsed or name in typed_columns:
        return False
    return target is None or not (target.is_numeric() or target == pl.Boolean)


def _whole_key(value: pl.Expr) -> pl.Expr:
    """The key of a number: a whole number (of any integer type, or a whole float) as an Int64,
    other numbers as themselves."""
    as_int = value.cast(pl.Int64, strict=False)
    return (
        pl.when(as_int == value)
        .then(as_int.hash(seed=HASH_SEED))
        .otherwise(value.cast(pl.Float64).hash(seed=HASH_SEED))
    )


MIX = np.uint64(0x9E3779B97F4A7C15)
"""An odd constant: multiplying 64-bit integers by it is a bijection that spreads their bits."""


NULL_KEY = np.uint64(0x6A09E667F3BCC909)
"""The key of a missing cell in the streaming engine's row keys."""


def _stable_hash(data: Any) -> tuple[NDArray[np.uint64], NDArray[np.bool_] | None]:
    """64-bit keys of a column's values that do not depend on the process (for Dask), and
    which rows hold a value (None when all do). Dictionary arrays hash each entry once;
    integers are their own key, spread by a bijective multiplication (no collision at all),
    whatever their width, their nulls, or a float type holding them (5 and 5.0 are one key).

    >>> [int(_stable_hash(pl.Series(v, dtype=t))[0][0] == _stable_hash(pl.Series([5]))[0][0])
    ...  for v, t in (([5], pl.Int32), ([5.0, None], pl.Float64), ([5, None], pl.Int64))]
    [1, 1, 1]
    """
    ints = _arrow_integers(data)
    if ints is not None:
        return ints.astype(np.int64, copy=False).view(np.uint64) * MIX, None
    if _is_dictionary(data):
        entries = pl.from_arrow(data.dictionary)
        assert isinstance(entries, pl.Series)
        entry_hash = np.append(entries.hash(seed=HASH_SEED).to_numpy(), np.uint64(0))
        index = _dictionary_index(data)
        present = index < len(entries)
        return entry_hash[index], (None if present.all() else present)
    series = _text_series(data)  # categories key as a dictionary's text entries do
    present = series.is_not_null().to_numpy() if series.null_count() else None
    if series.dtype.is_integer():
        return series.cast(pl.Int64).fill_null(0).to_numpy().view(np.uint64) * MIX, present
    if series.dtype.is_float():
        values = series.cast(pl.Float64).to_numpy()
        number = ~np.isnan(values)
        whole = number & (values == np.round(values)) & (np.abs(values) < 2.0**63)
        keys = (
            np.where(whole, np.where(whole, values, 0).astype(np.int64).view(np.uint64), values.view(np.uint64)) * MIX
        )
        return keys, (None if number.all() else number)
    return series.hash(seed=HASH_SEED).to_numpy(), present


def _typed_keys(data: Any, intended: pl.DataType | None) -> NDArray[np.uint64]:
    """:func:`_keys_of` a column, a piece of a CSV read as text for a stray cell keying the
    numbers of a column the reader typed (``intended``) as the typed pieces do."""
    keys = _keys_of(data)
    if intended is None or not intended.is_numeric():
        return keys
    series = _text_series(data)
    if series.dtype != pl.String:
        return keys
    typed = series.str.strip_chars().cast(pl.Float64 if intended.is_float() else intended, strict=False)
    return np.where(typed.is_not_null().to_numpy(), _stable_hash(typed)[0], keys)


def _keys_of(data: Any) -> NDArray[np.uint64]:
    """:func:`_stable_hash`'s keys, missing cells keyed :data:`NULL_KEY`."""
    if isinstance(data, np.ndarray):  # integers without nulls, as read from Arrow
        ints: NDArray[np.uint64] = data.astype(np.int64, copy=False).view(np.uint64) * MIX
        return ints
    keys, present = _stable_hash(data)
    return keys if present is None else np.where(present, keys, NULL_KEY)
