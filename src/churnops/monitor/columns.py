"""Column types and roles: declared in the configuration, or inferred with Evidently 0.7's rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import polars as pl

ColumnType = Literal["numerical", "categorical", "datetime", "text", "unknown"]
Role = Literal["feature", "target", "prediction", "id", "ignored"]
INTEGER_CARDINALITY_LIMIT = 10
"""Evidently 0.7: an integer column with at most this many distinct values is categorical."""


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is monitored."""

    name: str
    role: Role
    column_type: ColumnType
    declared: bool
    """True when the configuration gave the type or role, False when it was inferred."""

    @property
    def test_type(self) -> str:
        """The type tests see: dates are tested as numbers."""
        return "categorical" if self.column_type == "categorical" else "numerical"

    @property
    def tested(self) -> bool:
        """Whether the column gets a drift test."""
        return self.role in ("feature", "target", "prediction") and self.column_type in (
            "numerical",
            "categorical",
            "datetime",
        )


def infer_column_type(series: pl.Series) -> ColumnType:
    """Evidently 0.7's ``infer_column_type``, on a polars Series.

    float -> numerical; integer -> categorical with at most 10 distinct values, else
    numerical; string -> text when distinct values exceed half the non-null count, else
    categorical; boolean or categorical dtype -> categorical; dates -> datetime.

    >>> infer_column_type(pl.Series([1, 2, 3]))
    'categorical'
    >>> infer_column_type(pl.Series([0.5, 1.5]))
    'numerical'
    >>> infer_column_type(pl.Series(["a", "b", "c"]))
    'text'
    """
    dtype = series.dtype
    if dtype.is_float():
        return "numerical"
    if dtype.is_integer():
        return "categorical" if series.n_unique() <= INTEGER_CARDINALITY_LIMIT else "numerical"
    if dtype in (pl.String, pl.Utf8):
        non_null = series.len() - series.null_count()
        if non_null == 0:
            return "unknown"
        distinct = series.drop_nulls().n_unique()
        return "text" if distinct > non_null * 0.5 else "categorical"
    if dtype == pl.Boolean or isinstance(dtype, pl.Categorical | pl.Enum):
        return "categorical"
    if dtype.is_temporal():
        return "datetime"
    return "unknown"


DeclaredType = Callable[[str], str | None]


def plan_column(name: str, series: pl.Series, declared: str | None) -> ColumnPlan:
    """The plan for one reference column, from its declared role/type or by inference."""
    if declared in ("id", "ignored"):
        return ColumnPlan(name, declared, "unknown", True)  # type: ignore[arg-type]
    role: Role = "feature"
    column_type: ColumnType
    if declared in ("target", "prediction"):
        role = declared  # type: ignore[assignment]
        column_type = infer_column_type(series)
        # A label is a category when it has two values, whatever its storage type (0.0/1.0).
        if column_type == "text" or series.drop_nulls().n_unique() <= 2:
            column_type = "categorical"
        return ColumnPlan(name, role, column_type, True)
    if declared == "binary":
        return ColumnPlan(name, role, "categorical", True)
    if declared in ("numerical", "categorical", "datetime", "text"):
        return ColumnPlan(name, role, declared, True)  # type: ignore[arg-type]
    return ColumnPlan(name, role, infer_column_type(series), False)


def plan_columns(reference: pl.DataFrame, declared: DeclaredType) -> list[ColumnPlan]:
    """Plans for every reference column, in file order."""
    return [plan_column(name, reference[name], declared(name)) for name in reference.columns]
