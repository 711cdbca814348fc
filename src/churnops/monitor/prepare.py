"""From polars columns to the samples the tests consume.

A numerical sample keeps its finite values sorted (every numerical test is order-free, and
sorted values make the reference profile reusable); a categorical sample keeps its values as
integer codes in row order (the TVD permutation test needs the order) plus the sorted labels.
Missing values (null, NaN) and infinities are counted and dropped, as Evidently drops them.
Datetime columns become numerical samples in days since 1970-01-01.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
CodeArray = NDArray[np.int64]
NUMERIC_CLEAN = r"[\s,_']"
"""Characters dropped before parsing numbers given as text (thousands separators, spaces)."""


@dataclass(frozen=True)
class Coerced:
    """A column brought to the type the monitoring expects, with what could not be parsed."""

    series: pl.Series
    unparsable: int


def coerce_numerical(series: pl.Series) -> Coerced:
    """Float64 values; text is parsed after removing thousands separators and blanks.

    >>> c = coerce_numerical(pl.Series(["1,200.5", "x", None]))
    >>> c.series.to_list(), c.unparsable
    ([1200.5, None, None], 1)
    """
    if series.dtype.is_numeric():
        return Coerced(series.cast(pl.Float64), 0)
    if series.dtype == pl.Boolean:
        return Coerced(series.cast(pl.Float64), 0)
    if series.dtype.is_temporal():
        return coerce_datetime(series)
    text = series.cast(pl.String).str.replace_all(NUMERIC_CLEAN, "")
    parsed = text.cast(pl.Float64, strict=False)
    unparsable = int((parsed.is_null() & text.is_not_null() & (text != "")).sum())
    return Coerced(parsed, unparsable)


def coerce_datetime(series: pl.Series) -> Coerced:
    """Days since 1970-01-01 as Float64, parsing ISO dates or datetimes given as text."""
    if series.dtype == pl.Date:
        parsed = series
    elif series.dtype.is_temporal():
        parsed = series.cast(pl.Datetime("us")).dt.date()
    else:
        text = series.cast(pl.String).str.strip_chars()
        parsed = text.str.to_date(strict=False)
        if parsed.is_null().sum() > text.is_null().sum():
            as_datetime = text.str.to_datetime(strict=False, time_unit="us").dt.date()
            parsed = parsed.fill_null(as_datetime)
        unparsable = int((parsed.is_null() & text.is_not_null() & (text != "")).sum())
        return Coerced(parsed.cast(pl.Int32).cast(pl.Float64), unparsable)
    return Coerced(parsed.cast(pl.Int32).cast(pl.Float64), 0)


def coerce_categorical(series: pl.Series, like: pl.DataType | None = None) -> Coerced:
    """Categories keep their type; a current column is cast to the reference's type when it can be."""
    if isinstance(series.dtype, pl.Categorical | pl.Enum):
        series = series.cast(pl.String)
    if like is None or series.dtype == like:
        return Coerced(series, 0)
    if like == pl.String:
        return Coerced(series.cast(pl.String), 0)
    cast = series.cast(like, strict=False)
    unparsable = int((cast.is_null() & series.is_not_null()).sum())
    return Coerced(cast, unparsable)


@dataclass(frozen=True)
class NumericalSample:
    """Finite values (sorted) plus counts of what was dropped."""

    values: FloatArray
    rows: int
    missing: int
    infinite: int
    unparsable: int = 0

    @classmethod
    def from_series(cls, series: pl.Series, unparsable: int = 0) -> NumericalSample:
        raw = series.cast(pl.Float64).to_numpy(allow_copy=True)
        nan_mask = np.isnan(raw)
        inf_mask = np.isinf(raw)
        values = np.sort(raw[~(nan_mask | inf_mask)])
        return cls(values, len(raw), int(nan_mask.sum()) - unparsable, int(inf_mask.sum()), unparsable)


@dataclass(frozen=True)
class CategoricalSample:
    """Category codes in row order (missing removed) and the sorted labels they index."""

    codes: CodeArray
    labels: list[Any]
    rows: int
    missing: int
    unparsable: int = 0

    @property
    def counts(self) -> NDArray[np.int64]:
        return np.bincount(self.codes, minlength=len(self.labels)).astype(np.int64)

    @classmethod
    def from_series(cls, series: pl.Series, unparsable: int = 0) -> CategoricalSample:
        rows = series.len()
        present = series.drop_nulls()
        if present.dtype.is_float():
            present = present.filter(present.is_finite())
        labels = present.unique().sort()
        mapping = pl.DataFrame({"v": labels}).with_row_index("code")
        codes = (
            pl.DataFrame({"v": present})
            .join(mapping, on="v", how="left", maintain_order="left")["code"]
            .to_numpy()
            .astype(np.int64)
        )
        return cls(codes, labels.to_list(), rows, rows - len(codes) - unparsable, unparsable)


def align_categories(
    reference: CategoricalSample, current: CategoricalSample
) -> tuple[CodeArray, CodeArray, list[Any]]:
    """Re-code both samples on the sorted union of their labels.

    >>> ref = CategoricalSample.from_series(pl.Series(["b", "a", "b"]))
    >>> cur = CategoricalSample.from_series(pl.Series(["c", "b"]))
    >>> r, c, labels = align_categories(ref, cur)
    >>> r.tolist(), c.tolist(), labels
    ([1, 0, 1], [2, 1], ['a', 'b', 'c'])
    """
    if reference.labels == current.labels:
        return reference.codes, current.codes, list(reference.labels)
    try:
        union = sorted(set(reference.labels) | set(current.labels))
    except TypeError:  # mixed label types: order them by their text
        union = sorted(set(reference.labels) | set(current.labels), key=str)
    position = {label: i for i, label in enumerate(union)}
    ref_map = np.array([position[label] for label in reference.labels], dtype=np.int64)
    cur_map = np.array([position[label] for label in current.labels], dtype=np.int64)
    return ref_map[reference.codes], cur_map[current.codes], union


Sample = NumericalSample | CategoricalSample
