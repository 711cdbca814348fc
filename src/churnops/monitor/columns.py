"""Column types and roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnType = Literal["numerical", "categorical", "datetime", "text", "unknown"]
Role = Literal["feature", "target", "prediction", "id", "ignored"]
INTEGER_CARDINALITY_LIMIT = 10
"""Evidently 0.7: an integer column with at most this many distinct values is categorical."""


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is monitored: its role, its type, and whether the configuration said so."""

    name: str
    role: Role
    column_type: ColumnType
    declared: bool
    """True when the configuration gave the type or role, False when it was inferred."""

    @property
    def test_type(self) -> str:
        """The type tests see: dates are tested as numbers."""
        return "categorical" if self.column_type == "categorical" else "numerical"
