"""Number and text formats for the report: one format per table column, breakable paths.

A column of a table shows every number with the same decimals and notation, chosen from the
numbers it holds (``shared_format``), so ``7,172.04``, ``6,748.9`` and ``1.2643e+06`` never meet
in one column. Shares get one number of decimals per table (``share_format``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup, escape

DASH = "—"


def _finite(value: float | None) -> bool:
    return value is not None and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class NumberFormat:
    """Fixed decimals with thousands separators, or scientific notation with fixed digits.

    >>> NumberFormat(1)(629.31), NumberFormat(0)(1264299.41), NumberFormat(2, True)(0.0000123)
    ('629.3', '1,264,299', '1.23e-05')
    >>> NumberFormat(1).signed(2.04), NumberFormat(1).signed(-0.01), NumberFormat(0)(None)
    ('+2.0', '0.0', '—')
    """

    decimals: int = 0
    scientific: bool = False

    def __call__(self, value: float | None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return DASH
        value = float(value)
        if math.isinf(value) or abs(value) >= 1e300:
            return "∞" if value > 0 else "-∞"
        text = f"{value:.{self.decimals}e}" if self.scientific else f"{value:,.{self.decimals}f}"
        return text[1:] if text.startswith("-") and not any(c in "123456789" for c in text.split("e")[0]) else text

    def signed(self, value: float | None) -> str:
        """With a ``+`` for a change upwards; a change that rounds to zero has no sign."""
        text = self(value)
        if value is None or text[0] in "-∞" or not any(c in "123456789" for c in text.split("e")[0]):
            return text
        return "+" + text


def shared_format(values: Iterable[float | None], significant: int = 3, scale: float | None = None) -> NumberFormat:
    """One format for a column of numbers: enough decimals for ``significant`` digits of its
    ``scale`` - by default its smallest number (numbers 10,000 times smaller than the largest
    count as zero); scientific notation when the largest is at least a billion or below one
    thousandth.

    >>> shared_format([629.3, 84.85, 300, 850]), shared_format([63098.79, 0, 7172.04, 1264299.41])
    (NumberFormat(decimals=1, scientific=False), NumberFormat(decimals=0, scientific=False))
    >>> shared_format([0.1908, 0.00251, 1e-12], significant=2), shared_format([2e9, 3.5])
    (NumberFormat(decimals=4, scientific=False), NumberFormat(decimals=2, scientific=True))
    >>> shared_format([-0.0237, 1.02, 3.52], scale=1.06)
    NumberFormat(decimals=2, scientific=False)
    """
    magnitudes = [abs(float(v)) for v in values if _finite(v) and v != 0]
    if not magnitudes:
        return NumberFormat(0)
    largest = max(magnitudes)
    if largest >= 1e9 or largest < 1e-3:
        return NumberFormat(significant - 1, scientific=True)
    if scale is None or not _finite(scale) or scale <= 0:
        scale = min(m for m in magnitudes if m >= largest * 1e-4)
    decimals = significant - 1 - math.floor(math.log10(scale))
    budget = max(0, 8 - 1 - math.floor(math.log10(largest)))  # at most 8 digits for the largest
    return NumberFormat(min(max(decimals, 0), budget, 6))


def p_value_cell(value: float | None) -> str:
    """A p-value in a table column: four decimals for every row, tiny ones as ``< 0.0001``.

    >>> p_value_cell(0.0312), p_value_cell(0.0), p_value_cell(0.5), p_value_cell(None)
    ('0.0312', '< 0.0001', '0.5000', '—')
    """
    if not _finite(value):
        return DASH
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


@dataclass(frozen=True)
class ShareFormat:
    """Shares as percentages with the same decimals; changes of shares in signed points.

    >>> ShareFormat(1)(0.2345), ShareFormat(1)(0.0), ShareFormat(2)(0.00001), ShareFormat(1)(None)
    ('23.4%', '0.0%', '<0.01%', '—')
    >>> ShareFormat(2).points(0.0469), ShareFormat(1).points(-0.012), ShareFormat(1).points(0.00001)
    ('+4.69', '-1.2', '0.0')
    """

    decimals: int = 1

    def __call__(self, value: float | None) -> str:
        if not _finite(value):
            return DASH
        if 0 < abs(value) < 0.0001:
            return "<0.01%"
        return f"{value * 100:.{self.decimals}f}%"

    def points(self, change: float | None) -> str:
        if not _finite(change):
            return DASH
        text = f"{change * 100:+.{self.decimals}f}"
        return text[1:] if float(text) == 0 else text


def share_format(shares: Iterable[float | None]) -> ShareFormat:
    """One share format for a table: one decimal, or two when a non-zero share is below 0.1%.

    >>> share_format([0.2345, 0.5]), share_format([0.2345, 0.0004])
    (ShareFormat(decimals=1), ShareFormat(decimals=2))
    """
    return ShareFormat(2 if any(_finite(s) and 0 < abs(s) < 0.001 for s in shares) else 1)


def iso_date(days: float | None) -> str:
    """A date stored as days since 1970 (how churnops keeps datetime columns).

    >>> iso_date(20000.0), iso_date(None)
    ('2024-10-04', '—')
    """
    if not _finite(days):
        return DASH
    try:
        return (date(1970, 1, 1) + timedelta(days=int(round(days)))).isoformat()
    except OverflowError:
        return f"{days:.6g} days"


SEPARATORS = re.compile(r"(?<=\w[/\\_.\-])(?=[^/\\_.\-\s])")


HIDDEN_SPACES = re.compile(r"^\s+|\s+$|\s{2,}")


def visible_spaces(label: str) -> str:
    """A category label with the spaces a page would hide made visible (``␣``): leading and
    trailing ones, and runs of them - ``'  Two year '`` is another category than ``'Two year'``,
    and a page shows both as "Two year".

    >>> visible_spaces("  Two year "), visible_spaces("Two year"), visible_spaces("a  b")
    ('␣␣Two year␣', 'Two year', 'a␣␣b')
    """
    return HIDDEN_SPACES.sub(lambda found: "\u2423" * len(found.group()), label)


def breakable(text: object) -> Markup:
    """Escaped text with a line-break opportunity (``<wbr>``) after each ``/ \\ _ - .`` inside a
    word, so long paths and names wrap at their separators instead of mid-word.

    >>> str(breakable("--current /tmp/a_b.csv")), str(breakable("<b>x</b>"))
    ('--current /tmp/<wbr>a_<wbr>b.<wbr>csv', '&lt;b&gt;x&lt;/b&gt;')
    """
    if text is None:
        return Markup("")
    return Markup("<wbr>").join(escape(piece) for piece in SEPARATORS.split(str(text)))
