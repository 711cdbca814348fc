"""The model's input matrix of a few records, encoded without a table.

``churnops serve`` scores a handful of records at a time; building a polars table of them and
joining each categorical column with its category list costs more than the trees (4 ms for one
row, as much as for sixteen). :class:`RecordEncoder` builds, once per model, a dictionary from
category to the booster's code for each categorical column, and encodes each record straight
into floats - the numbers :meth:`CompiledScorer.features` computes from the table, value for
value (tested on odd values too). Only values whose conversion is plain take this way: a whole
or real number in an ``Int64`` or ``Float64`` column, text in a ``String`` column, an ISO date
(``YYYY-MM-DD``), a missing value. Anything else (a column typed otherwise, a date written
another way) and the caller builds the table as before: :meth:`RecordEncoder.features` answers
None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from churnops.integrations.model_scorer import DAYS_PER_YEAR, CompiledScorer

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
NUMBER_TYPES = ("Int64", "Float64")
"""Reference types whose values reach the model as ``float(value)`` (a table casts them so)."""
DATE_TYPES = ("String", "Date")
"""Reference types of a date column whose values reach the model as the text sent."""
NAN = float("nan")
LIMIT = 2**63


@dataclass(frozen=True)
class _Column:
    name: str
    how: str  # "whole" (an Int64 column), "number", "category" or "age"
    codes: dict[Any, float]  # a category's booster code (after the pipeline's encoder)
    unknown: float = NAN  # the booster code of an unknown category (the pipeline's code -1)
    missing: float = NAN  # the booster code of a missing category
    numeric: bool = False  # categories that are numbers: values looked up as floats


class RecordEncoder:
    """Encodes records (JSON values typed by the reference's ``dtypes``) for a compiled scorer."""

    def __init__(self, scorer: CompiledScorer, dtypes: dict[str, str]) -> None:
        kinds = {"Int64": "whole", "Float64": "number"}
        prepared: list[_Column | None] = [
            _Column(name, kinds[dtypes[name]], {}) if dtypes.get(name) in kinds else None for name in scorer.numerical
        ]
        for name, categories, recode in zip(scorer.categorical, scorer.categories, scorer.recodes, strict=True):
            prepared.append(_category(name, categories, recode, dtypes.get(name)))
        prepared += [_Column(name, "age", {}) if dtypes.get(name) in DATE_TYPES else None for name in scorer.dates]
        self.usable = all(column is not None for column in prepared)
        """False when a column's type needs the table's rules."""
        self.columns: list[_Column] = [c for c in (prepared[k] for k in scorer.column_order) if c is not None]
        self.as_of = date.fromisoformat(scorer.as_of)

    def features(self, records: list[dict[str, Any]]) -> np.ndarray | None:
        """The booster's input matrix of ``records``; None when some value needs the table."""
        if not self.usable:
            return None
        rows = []
        for record in records:
            row = []
            for column in self.columns:
                value = record.get(column.name)
                kind = type(value)
                if value is None:
                    row.append(column.missing)
                elif column.how == "category":
                    if column.numeric and (kind is int or kind is float):
                        row.append(column.codes.get(float(value), column.unknown))
                    elif kind is str and not column.numeric:
                        row.append(column.codes.get(value, column.unknown))
                    else:
                        return None
                elif column.how == "number" and (kind is float or (kind is int and -LIMIT <= value < LIMIT)):
                    row.append(float(value))
                elif column.how == "whole" and (kind is int or (kind is float and value.is_integer())):
                    if not -LIMIT <= value < LIMIT:  # beyond Int64: the table has a missing value
                        return None
                    row.append(float(value))
                elif column.how == "age" and kind is str and ISO_DATE.fullmatch(value):
                    try:
                        row.append((self.as_of - date.fromisoformat(value)).days / DAYS_PER_YEAR)
                    except ValueError:
                        return None
                else:
                    return None
            rows.append(row)
        return np.array(rows, dtype=np.float64).reshape(len(records), len(self.columns))


def _category(name: str, categories: list[Any], recode: np.ndarray, dtype: str | None) -> _Column | None:
    """How a categorical column is encoded, as ``model_scorer._codes`` does on a table: text
    categories match text exactly (an empty category, None, matches a missing value); number
    categories match numbers as floats; anything unmatched is the pipeline's code -1."""
    booster = [float(code) for code in recode]  # booster code of (pipeline code + 1)
    unknown = booster[0]
    texts = [c for c in categories if c is not None]
    if categories and all(isinstance(c, str) for c in texts):
        if dtype != "String":
            return None
        codes = {category: booster[i + 1] for i, category in enumerate(categories)}
        missing = codes.pop(None, unknown)
        return _Column(name, "category", codes, unknown, missing) if len(codes) == len(texts) else None
    if dtype not in NUMBER_TYPES:
        return None
    numbers = {float(category): booster[i + 1] for i, category in enumerate(categories)}
    return (
        _Column(name, "category", numbers, unknown, unknown, numeric=True) if len(numbers) == len(categories) else None
    )
