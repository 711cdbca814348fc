"""Coercing columns to their monitored type, and the samples the tests consume.

A numerical sample keeps its finite values sorted - every numerical test is order-free - and,
when values repeat a lot, as distinct values with counts (``weights``), which is exact and small.
A categorical sample keeps its sorted labels and their counts; labels longer than
:data:`MAX_LABEL_CHARS` are kept as a fixed-size key (:func:`label_key`). Missing values (null,
NaN) and infinities are counted and dropped, as Evidently drops them. Datetime columns become
numerical samples in days since 1970-01-01.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from churnops.data.io import NULL_VALUES
from churnops.errors import InputDataError
from churnops.escape import plural
from churnops.monitor.binning import run_starts

FloatArray = NDArray[np.float64]
CountArray = NDArray[np.int64]
THOUSANDS = r"^[+-]?[1-9]\d{0,2}(,\d{3})+(\.\d*)?$"
"""A number written with comma thousands separators, such as 1,234,567.89."""
ONE_GROUP = r"^[+-]?[1-9]\d{0,2},\d{3}$"
"""``2,738``: two thousand seven hundred and thirty-eight, or - with a decimal comma - 2.738."""
DECIMAL_COMMA_ONLY = r"^[+-]?\d*,\d+$"
"""With :data:`THOUSANDS` not matching (``0,738``, ``12,5``, ``1234,567``): a decimal comma's number."""
POINT_OR_GROUPS = r"\d\.\d|^[+-]?\.\d|^[+-]?[1-9]\d{0,2},\d{3},\d{3}"
"""A decimal point (``12.5``) or two groups of thousands (``1,234,567``): commas group thousands."""
DECIMAL_COMMA_SHARE = 0.01
"""A text column of numbers with at least this share of its cells written with a decimal comma,
and more of them than cells with a decimal point, is written with decimal commas: its ``2,738``
are 2.738 there, which a decimal point does not read (a typo ``12,5`` among thousands is not)."""
FEW_DECIMAL_COMMAS = 0.001
"""Fewer cells written with a decimal comma (but at least two) still make the column one of
decimal commas when none of its cells is a whole number of at most three digits - what a
thousands separator leaves ungrouped (``999``): ``4,650`` beside ``0,840``, never ``999``."""
BLANKS = r"[\s_']"
"""Digit group separators dropped before parsing numbers given as text (1 234, 1'234, 1_234)."""
UNITS = r"^([+-]?)\s*[$€£¥]\s*|\s*[$€£¥%]$"
"""A currency sign before or after a number, or a percent sign after it ($88.66, 12.50 €, 54.4%):
dropped before parsing, the number kept as written (54.4% is 54.4)."""
WRITTEN_NUMBER = (
    r"^[+-]?\s*[$€£¥]?\s*[+-]?"
    r"(?:(?:[1-9]\d{0,2}(?:,\d{3})+|[1-9]\d{0,2}(?:[ '_\u00a0\u202f]\d{3})+|\d+)(?:\.\d*)?|\.\d+)"
    r"(?:[eE][+-]?\d+)?\s*[$€£¥%]?$"
)
"""A number as a person writes it in text: digits grouped by threes with one kind of separator
(``1,234,567.8``, ``1 234``, ``1'234``), a currency sign before or after, a percent sign after.
Digits grouped otherwise - phone numbers (``06 12 34 56 78``), dates (``2024 09 05``), codes -
are not numbers, and neither is ``0,123`` (a decimal comma: no group starts with a zero)."""
NOT_A_NUMBER_WORD = r"(?i)^[+-]?(?:nan|inf|infinity)$"
STRAY_SHARE = 0.05
"""A text column whose present cells are numbers but for at most this share of cells without a
digit (``n/a yet``, ``-``, ``?``) is numbers with stray cells (see :func:`numbers_as_text`)."""
STRAY_MIN_VALUES = 20
"""Present cells a text column needs before it is taken for numbers."""
MAX_LABEL_CHARS = 120
"""Longer category labels are kept, and shown, as a prefix, their length and a sha1 digest."""
WITH_POLARS_FROM = 10_000
"""Values from which polars sorts and counts an array, faster than NumPy (3x at a million)."""
LABEL_PREFIX_CHARS = MAX_LABEL_CHARS - 40
LABEL_KEY = re.compile(rf"(.{{{LABEL_PREFIX_CHARS}}})\.\.\. \((\d+) chars, sha1 ([0-9a-f]{{40}})\)", re.DOTALL)
"""What :func:`label_key` writes."""


MissingText = TypeVar("MissingText", pl.Expr, pl.Series)


def empty_rows_mask(frame: pl.DataFrame, names: list[str]) -> pl.Series | None:
    """Which rows of ``frame`` have no value in any of the columns ``names``; None when none has
    (a column without a missing value settles it from the null counts alone)."""
    names = [name for name in names if name in frame.schema]
    if not names or not frame.height or any(frame[name].null_count() == 0 for name in names):
        return None
    empty = frame.select(pl.all_horizontal([pl.col(name).is_null() for name in names])).to_series()
    return empty if empty.any() else None


def only_empty_rows(source: Any, n: int) -> InputDataError:
    """The error for a table whose ``n`` rows all hold no value (the blank lines of an export).

    >>> str(only_empty_rows("b.csv", 3))
    'b.csv: has no data: its 3 rows are empty (no value in any column)'
    """
    return InputDataError(
        f"{source}: has no data: its {n:,} {plural(n, 'row is', 'rows are')} empty (no value in any column)"
    )


def drop_empty_rows(chunk: Any, names: list[str]) -> tuple[Any, int]:
    """``chunk`` (a polars DataFrame or a pyarrow RecordBatch) without its empty rows - no value
    in any of the columns ``names``, the blank lines at the end of a spreadsheet's export - and
    how many there were. A row is no customer: its cells would count as missing in every column
    and the rows as repeats of each other. A column of ``names`` without a missing value (most
    chunks) settles it from the null counts alone.

    >>> frame = pl.DataFrame({"a": [1, None, None], "b": ["x", None, "y"]})
    >>> kept, empty = drop_empty_rows(frame, ["a", "b"])
    >>> kept.height, empty, drop_empty_rows(frame, ["a"])[1], drop_empty_rows(frame.head(1), ["a", "b"])[1]
    (2, 1, 2, 0)
    """
    if isinstance(chunk, pl.DataFrame):
        empty = empty_rows_mask(chunk, names)
        return (chunk, 0) if empty is None else (chunk.filter(~empty), int(empty.sum()))
    import pyarrow.compute as pc

    columns = [chunk.column(name) for name in names if name in chunk.schema.names]
    if not columns or not chunk.num_rows or any(column.null_count == 0 for column in columns):
        return chunk, 0
    mask = pc.is_null(columns[0])
    for column in columns[1:]:
        mask = pc.and_(mask, pc.is_null(column))
    count = int(pc.sum(mask).as_py() or 0)
    return (chunk.filter(pc.invert(mask)), count) if count else (chunk, 0)


def missing_text(text: MissingText) -> MissingText:
    """Text cells that a CSV file reads as missing (``NULL_VALUES``: ``""``, ``NA``, ``null``...),
    blanks around them ignored: in a column of numbers, dates or typed categories such a cell
    is a missing value, not an unparsable one, whatever the file's format (a Parquet file keeps
    them as text). Of an expression or a series alike.

    >>> pl.DataFrame({"v": ["NA", " null ", "", "n/a", "7"]}).select(missing_text(pl.col("v")))["v"].to_list()
    [True, True, True, False, False]
    """
    return text.str.strip_chars().is_in(NULL_VALUES)


def is_long_label(label: Any) -> bool:
    """Whether a label is text longer than :data:`MAX_LABEL_CHARS` and not yet a :func:`label_key`.

    >>> is_long_label("x" * 121), is_long_label(label_key("x" * 121)), is_long_label(3)
    (True, False, False)
    """
    return isinstance(label, str) and len(label) > MAX_LABEL_CHARS and LABEL_KEY.fullmatch(label) is None


def label_key(text: str) -> str:
    """The fixed-size stand-in of a label longer than :data:`MAX_LABEL_CHARS`.

    Its prefix, length and full sha1 (160 bits: distinct labels never share a key in practice,
    where the 10 hex digits shown in outputs would collide among a million labels of one length
    and prefix). A category then costs about 150 bytes however long its label is, and outputs
    show it exactly as they showed the label itself (:func:`churnops.monitor.summaries.label_text`).

    >>> key = label_key("x" * 200)
    >>> len(key), key[78:]
    (142, 'xx... (200 chars, sha1 94218caae9904e93a3d7bf578bf4791926fc5e82)')
    """
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{text[:LABEL_PREFIX_CHARS]}... ({len(text)} chars, sha1 {digest})"


def shorten_labels(series: pl.Series) -> pl.Series:
    """Text labels longer than :data:`MAX_LABEL_CHARS` replaced by their :func:`label_key`.

    Linear in the bytes of the series: the digests are taken from the Arrow buffers in place
    (turning 10 kB labels into Python strings first cost more than hashing them), the rest is
    vectorized. A series without long values - the usual case - is returned as it is after one
    pass over the string lengths.

    >>> shorten_labels(pl.Series(["a", "b" * 130, None])).str.len_chars().to_list()
    [1, 142, None]
    >>> once = shorten_labels(pl.Series(["b" * 130]))
    >>> once[0] == label_key("b" * 130), shorten_labels(once).equals(once)
    (True, True)
    """
    if series.dtype != pl.String or series.len() == 0:
        return series
    longest = series.str.len_bytes().max()  # bytes >= characters: a cheap first test
    if longest is None or longest <= MAX_LABEL_CHARS:  # type: ignore[operator]
        return series
    long = (series.str.len_chars() > MAX_LABEL_CHARS).fill_null(False)
    if long.any():  # keys are longer than MAX_LABEL_CHARS too: shortening twice changes nothing
        long &= ~series.str.contains(f"^(?s){LABEL_KEY.pattern}$").fill_null(False)
    if not long.any():
        return series
    values = series.filter(long)
    keys = pl.select(
        pl.concat_str(
            values.str.slice(0, LABEL_PREFIX_CHARS),
            pl.lit("... ("),
            values.str.len_chars().cast(pl.String),
            pl.lit(" chars, sha1 "),
            pl.Series(_utf8_sha1(values), dtype=pl.String),
            pl.lit(")"),
        )
    ).to_series()
    shortened: pl.Series = series.clone().scatter(np.flatnonzero(long.to_numpy()), keys)
    return shortened


_VIEW = np.dtype([("length", "<i4"), ("prefix", "<i4"), ("buffer", "<i4"), ("offset", "<i4")])
"""An Arrow string view of more than 12 bytes: length, first bytes, data buffer and offset in it."""


def _utf8_sha1(values: pl.Series) -> list[str]:
    """The sha1 hex digest of the UTF-8 bytes of each value of a null-free string series whose
    values are longer than 12 bytes (so that no view holds its bytes inline)."""
    import pyarrow as pa

    arrow = values.to_arrow(compat_level=pl.CompatLevel.newest())
    digests: list[str] = []
    for chunk in arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]:
        buffers = chunk.buffers()
        if pa.types.is_string_view(chunk.type):
            views = np.frombuffer(buffers[1], dtype=_VIEW)[chunk.offset : chunk.offset + len(chunk)]
            data = [memoryview(buffer) for buffer in buffers[2:]]
            pieces = zip(views["buffer"].tolist(), views["offset"].tolist(), views["length"].tolist(), strict=True)
        else:
            chunk = chunk.cast(pa.large_string())
            buffers = chunk.buffers()
            offsets = np.frombuffer(buffers[1], dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
            data = [memoryview(buffers[2])]
            pieces = zip([0] * len(chunk), offsets[:-1].tolist(), np.diff(offsets).tolist(), strict=True)
        digests += [hashlib.sha1(data[b][start : start + n]).hexdigest() for b, start, n in pieces]
    return digests


@dataclass(frozen=True)
class Coerced:
    """A column brought to the type the monitoring expects, with what could not be parsed."""

    series: pl.Series
    unparsable: int
    inferred: bool = False
    """True when the reading depended on the values together (a date format inferred from the
    first ones): the same rows among others could read differently."""


def decimal_comma_cells(text: MissingText) -> MissingText:
    """Which cells of ``text`` (an expression or a series) only a decimal comma writes
    (:data:`DECIMAL_COMMA_ONLY` but not :data:`THOUSANDS`: ``0,512``, ``12,5``, not ``2,738``)."""
    return text.str.contains(DECIMAL_COMMA_ONLY) & ~text.str.contains(THOUSANDS)


def numeric_exprs(name: str, source: pl.DataType) -> tuple[pl.Expr, pl.Expr | None]:
    """Expressions for a column as Float64, and (text sources only) a flag of unparsable cells.

    A comma is read as a thousands separator only in the pattern ``1,234,567.89``; anything
    else that is not a number (``1,5``, ``abc``) is flagged unparsable and becomes missing. Among
    cells written with decimal commas (:data:`DECIMAL_COMMA_SHARE`), ``2,738`` is no thousands
    either: it is 2.738 there, unparsable with a decimal point like the column's ``0,512``.
    """
    column = pl.col(name)
    if source.is_numeric() or source == pl.Boolean:
        return column.cast(pl.Float64), None
    text = column.cast(pl.String).str.strip_chars().str.replace(UNITS, "${1}")
    commas = decimal_comma_cells(text).sum()
    points = text.str.contains(POINT_OR_GROUPS).sum()
    # a few '0,840' among '4,650' and no number a thousands separator leaves as it is ('999'):
    # three decimals after a comma, below 1 now and then - not thousands (read x1000 before)
    ungrouped = text.str.contains(r"^[+-]?\d{1,3}$").sum()
    few_but_alone = (commas >= pl.max_horizontal(2, FEW_DECIMAL_COMMAS * text.count())) & (ungrouped == 0)
    decimal_commas = (commas > points) & ((commas >= DECIMAL_COMMA_SHARE * text.count()) | few_but_alone)
    cleaned = (
        pl.when(text.str.contains(THOUSANDS) & ~(decimal_commas & text.str.contains(ONE_GROUP)))
        .then(text.str.replace_all(",", "", literal=True))
        .otherwise(text)
        .str.replace_all(BLANKS, "")
    )
    values = cleaned.cast(pl.Float64, strict=False)
    return values, values.is_null() & cleaned.is_not_null() & (cleaned != "") & ~missing_text(column.cast(pl.String))


def coerce_numerical(series: pl.Series, dates: bool = True) -> Coerced:
    """Float64 values; text is parsed after removing digit group separators and a currency or
    percent sign (see :func:`numeric_exprs`). Dates are read as day numbers, or (``dates=False``,
    as a batch's column of numbers reads them) are no numbers.

    >>> c = coerce_numerical(pl.Series(["1,200.5", "x", None, "3 000", "1,5", "$88.66", "-€5", "54.4%"]))
    >>> c.series.to_list(), c.unparsable
    ([1200.5, None, None, 3000.0, None, 88.66, -5.0, 54.4], 2)
    >>> coerce_numerical(pl.Series(["2,738", "0,512", "13,204"])).series.to_list()  # decimal commas
    [None, None, None]
    >>> coerce_numerical(pl.Series(["2,738", "999", "13,204"] * 40 + ["12,5"])).series.to_list()[:3]
    [2738.0, 999.0, 13204.0]
    >>> coerce_numerical(pl.Series(["4,650", "10,669"] * 1000 + ["0,840", "0,990", "0,512"])).unparsable  # 3 decimals
    2003
    >>> coerce_numerical(pl.Series(["4,650", "10,669"] * 1000 + ["0,840"])).unparsable  # one typo: thousands
    1
    """
    if series.dtype.is_temporal() and dates:
        return coerce_datetime(series)
    values, flag = numeric_exprs("v", series.dtype)
    frame = pl.DataFrame({"v": series}).select(
        values.alias("v"), (flag if flag is not None else pl.lit(False)).alias("f")
    )
    return Coerced(frame["v"].alias(series.name), int(frame["f"].sum()))


@dataclass(frozen=True)
class NumbersAsText:
    """A text column that holds numbers (:func:`numbers_as_text`)."""

    dtype: pl.DataType
    """Int64 when every number is whole and written plainly, else Float64."""
    strays: int
    """Present cells that are not numbers (counted as unparsable when the column is read)."""
    present: int
    example: str
    """A stray cell, or else a number as written (``53,455.84``)."""


def numbers_as_text(series: pl.Series) -> NumbersAsText | None:
    """Whether a text column holds numbers that its reader could not type: numbers written with
    digit group separators or a currency or percent sign (``1,234.5``, ``$88.66``, ``54.4%``), or
    numbers but for a few cells without a digit (``n/a``, ``-``, ``?``: at most
    :data:`STRAY_SHARE` of the present cells). None for anything else - a cell with a digit that
    is not a number (``A642``, ``4+``) makes the column a code, not a number.

    >>> numbers_as_text(pl.Series(["1,200.5", "3"] * 10 + ["?"])).dtype, numbers_as_text(pl.Series(["1", "?"] * 10))
    (Float64, None)
    >>> found = numbers_as_text(pl.Series([str(i % 7) for i in range(99)] + ["-"]))
    >>> found.dtype, found.strays, found.present, found.example
    (Int64, 1, 100, '-')
    >>> numbers_as_text(pl.Series([str(i) for i in range(99)] + ["A642"])) is None
    True
    """
    if series.dtype != pl.String:
        return None
    values = series.drop_nulls()
    values = values.filter(~missing_text(values))
    if values.len() < STRAY_MIN_VALUES:
        return None
    if values.len() - int(values.str.contains(r"\d").sum()) > STRAY_SHARE * values.len():
        return None  # words (most text columns): a cell without a digit is no number - one cheap pass
    numbers = coerce_numerical(values).series
    strays = values.filter(numbers.is_null())
    if strays.len() > STRAY_SHARE * values.len() or strays.str.contains(r"\d").any():
        return None
    written = values.filter(numbers.is_not_null())
    text = written.str.strip_chars()
    plain = text.filter(~text.str.contains(NOT_A_NUMBER_WORD))
    if not plain.str.contains(WRITTEN_NUMBER).all():
        return None  # a phone number, a date, a code: digits, but not a number written as text
    grouped = plain.filter(plain.str.contains(r"\d,\d"))
    if grouped.len() and not grouped.str.contains(r"\d,\d{3},\d|\d,\d{3}\.").any() and not _below_groups(plain):
        return None  # 1,234 alone may be a decimal comma: grouping is shown by 1,234,567 or 1,234.5
    whole = written.str.strip_chars().cast(pl.Int64, strict=False)
    dtype = pl.Int64() if whole.null_count() == 0 else pl.Float64()
    example = strays[0] if strays.len() else written.filter(whole.is_null())[0] if whole.null_count() else written[0]
    return NumbersAsText(dtype, strays.len(), values.len(), str(example)[:40])


def _below_groups(written: pl.Series) -> bool:
    """Whether numbers written ``7,815`` have digits grouped by thousands as the column's other
    numbers show: whole numbers without a comma (at least :data:`DECIMAL_COMMA_SHARE` of the
    cells), every one below 1,000 - the numbers a thousands separator leaves ungrouped - and no
    more cells that only a decimal comma writes (``0,512``, ``12,5``) than typos would make.

    >>> _below_groups(pl.Series(["7,815", "999", "18,604"])), _below_groups(pl.Series(["7,815", "18,604"]))
    (True, False)
    >>> _below_groups(pl.Series(["7,815", "1999", "18,604"])), _below_groups(pl.Series(["7,815", "12", "0,512"]))
    (False, False)
    """
    text = written.str.strip_chars()
    whole = text.filter(text.str.contains(r"^[+-]?\d+$"))
    commas = int(decimal_comma_cells(text).sum())
    enough = max(1.0, DECIMAL_COMMA_SHARE * text.len())
    return whole.len() >= enough and bool(whole.str.contains(r"^[+-]?\d{1,3}$").all()) and commas < enough


def almost_numbers(series: pl.Series) -> NumbersAsText | None:
    """Whether a text column holds numbers (as a person writes them: :data:`WRITTEN_NUMBER`) but
    for a few cells, one at least with digits (``12,5``, ``4+``, ``7 ans``: at most
    :data:`STRAY_SHARE` of the present cells), which leave it a column of categories - as
    Evidently reads it - where one typo may have made a column of numbers one of categories.
    None when :func:`numbers_as_text` reads it as numbers, for codes (a number written with a
    leading zero, ``01``, beside ``2A``), or anything else.

    >>> found = almost_numbers(pl.Series([str(i) for i in range(99)] + ["12,5"]))
    >>> found.strays, found.present, found.example
    (1, 100, '12,5')
    >>> almost_numbers(pl.Series(["A642", "B7"] * 20)) is None, almost_numbers(pl.Series(["1", "?"] * 20)) is None
    (True, True)
    >>> almost_numbers(pl.Series([f"{i % 19 + 1:02d}" for i in range(99)] + ["2A"])) is None
    True
    """
    if series.dtype != pl.String:
        return None
    values = series.drop_nulls()
    digits = values.str.contains(r"\d")
    if 2 * int(digits.sum()) < values.len():
        return None  # words (most text columns): one cheap pass, before the missing values are told apart
    present = ~missing_text(values)
    values, digits = values.filter(present), digits.filter(present)
    if values.len() < STRAY_MIN_VALUES or values.len() - int(digits.sum()) > STRAY_SHARE * values.len():
        return None
    text = values.str.strip_chars()
    written = text.str.contains(WRITTEN_NUMBER) & ~text.str.contains(NOT_A_NUMBER_WORD)
    others = values.filter(~written)
    if others.len() == 0 or others.len() > STRAY_SHARE * values.len() or not others.str.contains(r"\d").any():
        return None
    if text.filter(written).str.contains(r"^[+-]?0\d").any():
        return None  # 01, 007: codes written with leading zeros, where 2A is a code too
    if numbers_as_text(series) is not None:
        return None
    whole = text.filter(written).cast(pl.Int64, strict=False)
    dtype = pl.Int64() if whole.null_count() == 0 else pl.Float64()
    example = str(others.filter(others.str.contains(r"\d"))[0])
    return NumbersAsText(dtype, others.len(), values.len(), example if len(example) <= 40 else example[:39] + "…")


DATE_SHARE = 0.95
"""Share of present values that must read as dates for a text column to be taken for dates."""


def mostly_dates(values: pl.Series) -> bool:
    """Whether at least :data:`DATE_SHARE` of ``values`` (text, no missing) read as dates.

    >>> mostly_dates(pl.Series(["2024-03-01", "2024-03-02"])), mostly_dates(pl.Series(["Anna", "Bo"]))
    (True, False)
    """
    if values.len() == 0:
        return False
    if values.str.contains(r"\d").mean() < DATE_SHARE:  # a date has digits: names and labels stop here
        return False
    return coerce_datetime(values).series.null_count() <= (1 - DATE_SHARE) * values.len()


ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.fZ", "%Y-%m-%d %H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S%.f UTC", "%Y-%m-%d %H:%M:%S%.f UTC", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d", "%Y%m%dT%H%M%S",
)  # fmt: skip
"""Formats that read one way only (year first), tried together."""
DAY_FIRST = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
             "%d-%m-%Y")  # fmt: skip
MONTH_FIRST = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p", "%m/%d/%Y",
               "%m-%d-%Y")  # fmt: skip
MONTH_NAMES = ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%b %d %Y", "%d-%b-%Y")
DATE_FAMILIES = {"iso": ISO_FORMATS, "day-first": DAY_FIRST, "month-first": MONTH_FIRST, "month-names": MONTH_NAMES}
"""The ways of writing dates churnops recognises by name (``columns.date_formats``), in the order a
tie between them is decided."""


UTC_OFFSET = r"\s*([+-])(0[0-9]|1[0-4])(?::?([0-5][0-9]))?$"
"""A UTC offset ending a time (``+02:00``, ``-0500``, ``+05:30``, `` +01``): from -14:00 to +14:00,
so that ``+25:00`` reads as no time."""
OFFSET_DIRECTIVE = re.compile(r"\s*%(?::{1,3}|#)?z$")
"""A format's closing UTC offset (``%z``, ``%:z``, ``%::z``, ``%#z``), with the spaces before it."""


def read_dates(text: pl.Series, formats: tuple[str, ...], as_written: bool = False) -> pl.Series:
    """``text`` read with the first of ``formats`` that reads each value, as datetimes without a
    zone; what no format reads is missing. A time written with its UTC offset (a format ending in
    ``%z``) is that instant in UTC, or with ``as_written`` the day and time as written, in the
    writer's own zone (a date's calendar day, as a Parquet column's time zone is kept); one written
    in UTC (``Z``, `` UTC``) is the UTC day and time either way. Both read the same offsets.

    >>> read_dates(pl.Series(["31/01/2024", "x"]), DAY_FIRST).dt.date().to_list()
    [datetime.date(2024, 1, 31), None]
    >>> offsets = pl.Series(["2024-01-02T01:00:00+02:00", "2024-01-02 23:30:00 -05", "2024-01-02T01:00:00+25:00"])
    >>> read_dates(offsets, ISO_FORMATS, as_written=True).to_list()
    [datetime.datetime(2024, 1, 2, 1, 0), datetime.datetime(2024, 1, 2, 23, 30), None]
    >>> read_dates(offsets, ISO_FORMATS).to_list()
    [datetime.datetime(2024, 1, 1, 23, 0), datetime.datetime(2024, 1, 3, 4, 30), None]
    """
    out = pl.Series("time", [None] * text.len(), dtype=pl.Datetime("us"))
    offset: pl.Series | None = None  # read once, for the first format with an offset
    bare = text
    for fmt in formats:
        way = OFFSET_DIRECTIVE.sub("", fmt)
        if way != fmt and offset is None:  # the offset read here, one way for every writing of it
            offset, bare = _offset_minutes(text), text.str.replace(UTC_OFFSET, "")
        source = bare if way != fmt else text
        try:
            parsed = source.str.to_datetime(format=way, strict=False, time_unit="us")
        except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
            continue
        if way != fmt:  # only the values with an offset: the others have their own format
            assert offset is not None
            shift = pl.duration(minutes=pl.lit(0) if as_written else pl.lit(offset))  # to UTC: less the offset
            parsed = pl.select(pl.when(pl.lit(offset).is_not_null()).then(pl.lit(parsed) - shift)).to_series()
        parsed = _year_written(text, parsed)
        if isinstance(parsed.dtype, pl.Datetime) and parsed.dtype.time_zone:
            parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        out = out.fill_null(parsed.dt.cast_time_unit("us"))
        if out.null_count() == 0:
            break
    return out


def _offset_minutes(text: pl.Series) -> pl.Series:
    """The UTC offset closing each value of ``text``, in minutes (null: none, or no valid one).

    >>> _offset_minutes(pl.Series(["2024-01-02T01:00+02:00", "x -0530", "y", "z+2500"])).to_list()
    [120, -330, None, None]
    """
    parts = text.str.extract_groups(UTC_OFFSET).struct.unnest()
    sign = pl.when(pl.col("1") == "-").then(-1).otherwise(1)
    minutes = pl.col("2").cast(pl.Int64) * 60 + pl.col("3").cast(pl.Int64).fill_null(0)
    return parts.select((sign * minutes).alias("offset")).to_series()


@dataclass(frozen=True)
class DateFamily:
    """How a column's text dates are written, decided from distinct values."""

    name: str | None
    """A key of :data:`DATE_FAMILIES`, or None when no family reads any value."""
    parsed: pl.Series
    """The values read that way."""
    ambiguous: bool
    """Day first and month first read as many values, as different days (``01/05/2024``)."""


def date_family(distinct: pl.Series, as_written: bool = False) -> DateFamily:
    """The family of formats that reads the most of ``distinct`` (text values); ``as_written``:
    see :func:`read_dates`.

    >>> date_family(pl.Series(["12/25/2020", "01/02/2021"])).name
    'month-first'
    >>> date_family(pl.Series(["01/05/2024", "02/03/2024"])).ambiguous
    True
    """
    families = {name: read_dates(distinct, formats, as_written) for name, formats in DATE_FAMILIES.items()}
    counts = {name: parsed.len() - parsed.null_count() for name, parsed in families.items()}
    best = max(families, key=lambda name: counts[name])
    if counts[best] == 0:
        return DateFamily(None, families[best], False)
    day, month = families["day-first"], families["month-first"]
    ambiguous = (
        best in ("day-first", "month-first")
        and counts["day-first"] == counts["month-first"]
        and not day.equals(month, null_equal=True)
    )
    return DateFamily(best, families[best], ambiguous)


class AmbiguousDates(InputDataError):
    """Dates of a piece of a column that read as day/month and as month/day alike: the whole
    column may decide (:func:`churnops.pipeline.inference.batch_date_format`), else the user."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column


def _year_written(text: pl.Series, dates: pl.Series) -> pl.Series:
    """``dates`` read from ``text``, missing where the text does not hold the date's year in four
    digits: a format that matched part of a value (``Aug 1990`` read by ``%b %d %Y`` as 19 August
    of the year 90) read no date. Sentinels written in full (``9999-12-31``, ``0001-01-01``) stay.

    >>> read = pl.Series(["0090-08-19", "1990-08-19"]).str.to_date()
    >>> _year_written(pl.Series(["Aug 1990", "1990-08-19"]), read).to_list()
    [None, datetime.date(1990, 8, 19)]
    """
    year = dates.dt.year().cast(pl.String).str.zfill(4)
    kept = pl.DataFrame({"text": text, "year": year}).select(
        pl.col("text").str.contains(pl.col("year"), literal=True).fill_null(False)
    )
    return dates.zip_with(kept.to_series(), pl.Series([None] * dates.len(), dtype=dates.dtype))


def coerce_datetime(series: pl.Series, date_format: str | None = None, undecided: str = "guess") -> Coerced:
    """Days since 1970-01-01 as Float64, parsing dates or datetimes given as text.

    ``date_format``: a key of :data:`DATE_FAMILIES` or a strftime format (``columns.date_formats``,
    decided once from the reference); without it, ISO 8601 first, then the family that reads the
    most values of this series - and when day first and month first read them equally as different
    days, ``undecided="error"`` (a monitored column) raises :class:`InputDataError` naming the
    setting, where ``"guess"`` (looking whether text holds dates) takes day first.

    >>> coerce_datetime(pl.Series(["1970-01-11", "1970-01-02T12:00:00", "soon", None])).series.to_list()
    [10.0, 1.0, None, None]
    >>> coerce_datetime(pl.Series(["01/02/1970", "13/01/1970"]), "day-first").series.to_list()
    [31.0, 12.0]
    """
    if series.dtype == pl.Date:
        return Coerced(series.cast(pl.Int32).cast(pl.Float64), 0)
    if series.dtype.is_temporal():
        if isinstance(series.dtype, pl.Datetime) and series.dtype.time_zone:
            # the calendar day in the column's own time zone, as its dates are written: midnight
            # in Paris is that day, not the day before in UTC
            series = series.dt.replace_time_zone(None)
        return Coerced(series.cast(pl.Datetime("us")).dt.date().cast(pl.Int32).cast(pl.Float64), 0)
    text = series.cast(pl.String)
    # the usual case, and the fastest parse (without polars' cache of each distinct text: half the time)
    parsed = text.str.to_date("%Y-%m-%d", strict=False, cache=False)
    rest = parsed.null_count() > text.null_count()
    inferred = rest and date_format is None  # a decided format reads each value alone
    if rest:
        text = text.str.strip_chars()
        distinct = text.filter(parsed.is_null() & ~text.is_in(NULL_VALUES)).drop_nulls().unique(maintain_order=True)
        if date_format is not None:
            read = read_dates(distinct, DATE_FAMILIES.get(date_format, (date_format,)), as_written=True)
        else:
            family = date_family(distinct, as_written=True)
            if family.ambiguous and undecided == "error":  # 03/01/2024: 3 January or 1 March
                from churnops.escape import one_line_short

                shown = one_line_short(series.name or "?", 40)
                example = one_line_short(str(distinct[0]), 30)
                raise AmbiguousDates(
                    series.name or "",
                    f"the dates of '{shown}' (e.g. {example!r}) read as day/month and as month/day: set "
                    f'columns.date_formats = {{ "{shown}" = "month-first" }} (or "day-first", or a format such '
                    'as "%m/%d/%Y")',
                )
            read = family.parsed
        lookup = pl.DataFrame({"text": distinct, "date": read.dt.date()})
        found = pl.DataFrame({"text": text}).join(lookup, on="text", how="left", maintain_order="left")["date"]
        parsed = parsed.fill_null(found)
        if date_format is None and parsed.null_count() > text.null_count():
            # polars infers other formats from the first values, and refuses when none fits: such
            # values are unparsable dates, counted below, never an error. A guess whose year the
            # text does not hold ('Aug 1990' read as the year 90) is no reading either.
            with contextlib.suppress(pl.exceptions.PolarsError):
                parsed = parsed.fill_null(_year_written(text, text.str.to_date(strict=False)))
    unparsable = 0
    if parsed.null_count() > text.null_count():
        unparsable = int((parsed.is_null() & text.is_not_null() & ~missing_text(text)).sum())
    return Coerced(parsed.cast(pl.Int32).cast(pl.Float64), unparsable, inferred)


BOOLEAN_SPELLING = ("True", "False")
"""How a true/false value is written when the other file has the column as text (pandas' way)."""


def category_exprs(
    name: str, source: pl.DataType, like: pl.DataType | None = None, spelling: tuple[str, str] = BOOLEAN_SPELLING
) -> tuple[pl.Expr, pl.Expr | None]:
    """Expressions for a column's category values, and a flag of cells that do not fit ``like``.

    Categories keep their type; a current column is cast to the reference's label type
    (``like``) when it differs, and what does not cast is flagged. Non-finite floats are missing.
    True/false and text meet through their spelling: text ``true``/``false`` in any case reads as
    a boolean, and a boolean becomes the text the reference writes for it (``spelling``). A number
    becomes a whole-number code only when it is whole (``2.7`` is flagged, not read as ``2``) and
    true/false only when it is 1 or 0.

    >>> frame = pl.DataFrame({"v": [2.0, 2.7, None, float("nan")]})
    >>> value, flag = category_exprs("v", pl.Float64(), pl.Int64())
    >>> frame.select(value, flag.alias("f")).rows()
    [(2, False), (None, True), (None, False), (None, False)]
    """
    column = pl.col(name)
    if isinstance(source, pl.Categorical | pl.Enum):
        column, source = column.cast(pl.String), pl.String()
    flag = None
    if like == pl.Boolean and source == pl.String:
        word = column.str.strip_chars().str.to_lowercase()
        cast = pl.when(word == "true").then(True).when(word == "false").then(False).otherwise(None)
        return cast, cast.is_null() & column.is_not_null() & ~missing_text(column)
    if like == pl.String and source == pl.Boolean:
        return pl.when(column).then(pl.lit(spelling[0])).when(~column).then(pl.lit(spelling[1])), None
    if like is not None and source != like:
        if like == pl.Boolean and source.is_numeric():
            cast = pl.when(column == 1).then(True).when(column == 0).then(False)  # 5 is neither
        elif like.is_integer() and source.is_float():
            cast = pl.when(column == column.round()).then(column.cast(like, strict=False))  # 2.7 is no code 2
        else:
            cast = column.cast(like, strict=False)
        if like != pl.String:
            flag = cast.is_null() & column.is_not_null()
            if source == pl.String:
                flag = flag & ~missing_text(column)
            elif source.is_float():
                flag = flag & column.is_finite()  # NaN and infinities are missing, as a CSV's NaN is
        column, source = cast, like
    if source.is_float():
        column = pl.when(column.is_finite()).then(column)
    return column, flag


def coerce_categorical(
    series: pl.Series, like: pl.DataType | None = None, spelling: tuple[str, str] = BOOLEAN_SPELLING
) -> Coerced:
    """Category values, cast to ``like`` when given (see :func:`category_exprs`).

    >>> coerce_categorical(pl.Series(["TRUE", "false", "unknown"]), pl.Boolean()).series.to_list()
    [True, False, None]
    >>> coerce_categorical(pl.Series([True, None]), pl.String(), ("true", "false")).series.to_list()
    ['true', None]
    """
    dtype = series.dtype
    if (like is None or like == dtype) and not dtype.is_float() and not isinstance(dtype, pl.Categorical | pl.Enum):
        return Coerced(series, 0)  # nothing to cast or clean (the common case: a dictionary of strings)
    values, flag = category_exprs("v", series.dtype, like, spelling)
    frame = pl.DataFrame({"v": series}).select(
        values.alias("v"), (flag if flag is not None else pl.lit(False)).alias("f")
    )
    return Coerced(frame["v"].alias(series.name), int(frame["f"].sum()))


def coerce(series: pl.Series, column_type: str, like: pl.DataType | None = None) -> Coerced:
    """Bring a column to its monitored type (Float64 for numbers and dates)."""
    if column_type == "numerical":
        return coerce_numerical(series)
    if column_type == "datetime":
        return coerce_datetime(series)
    return coerce_categorical(series, like)


def sorted_copy(values: NDArray[Any]) -> NDArray[Any]:
    """``values`` sorted, in a new writable array.

    Large arrays go to polars, whose sort uses every core: a million floats in 20 ms on two
    cores, against NumPy's 60 ms on one. Equal values may come in any order, and ``-0.0`` equals
    ``0.0``: a zero is made ``0.0`` (:func:`unsigned_zeros`), so that the smallest or largest
    value, a bin's edge, never depends on which library sorted, nor on the order of the rows.

    >>> sorted_copy(np.array([3.0, 1.0, 2.0, -0.0])).tolist()
    [0.0, 1.0, 2.0, 3.0]
    >>> big = np.random.default_rng(1).integers(0, 2**63, WITH_POLARS_FROM, dtype=np.uint64)
    >>> bool(np.array_equal(sorted_copy(big), np.sort(big)))
    True
    """
    if values.size < WITH_POLARS_FROM:
        return unsigned_zeros(np.sort(values))
    return unsigned_zeros(pl.Series(values).sort().to_numpy(writable=True))


def unsigned_zeros(values: NDArray[Any]) -> NDArray[Any]:
    """``values`` (a new array of ours) with each ``-0.0`` made ``0.0``, in place.

    >>> np.signbit(unsigned_zeros(np.array([-0.0, 1.0, -2.0]))).tolist()
    [False, False, True]
    """
    if values.dtype.kind == "f":
        values += 0.0  # -0.0 + 0.0 is 0.0; every other value is unchanged
    return values


def distinct_counts(values: FloatArray) -> tuple[FloatArray, CountArray]:
    """The distinct values, sorted, and how often each occurs: ``np.unique(values,
    return_counts=True)``; large arrays are sorted by polars (:func:`sorted_copy`) and counted in
    one pass, 2-3x faster than NumPy for few distinct values and for many.

    >>> distinct_counts(np.array([2.0, 1.0, 2.0]))
    (array([1., 2.]), array([1, 2]))
    >>> values = np.random.default_rng(1).integers(0, 30, WITH_POLARS_FROM).astype(np.float64)
    >>> [bool(np.array_equal(a, b)) for a, b in zip(distinct_counts(values), np.unique(values, return_counts=True))]
    [True, True]
    """
    if values.size < WITH_POLARS_FROM:
        distinct, counts = np.unique(values, return_counts=True)
        return unsigned_zeros(distinct), counts.astype(np.int64)
    return run_lengths(sorted_copy(values))


def summed_counts(keys: NDArray[Any], counts: NDArray[np.integer]) -> tuple[NDArray[Any], CountArray]:
    """The distinct ``keys``, sorted, each with the sum of its ``counts`` (merging counted chunks);
    large arrays sorted by polars, with exact integer sums.

    >>> summed_counts(np.array([2.0, 1.0, 2.0]), np.array([5, 1, 1]))
    (array([1., 2.]), array([1, 6]))
    >>> keys = np.random.default_rng(1).integers(0, 30, WITH_POLARS_FROM).astype(np.float64)
    >>> merged = summed_counts(keys, np.ones(keys.size, dtype=np.int64))
    >>> [bool(np.array_equal(a, b)) for a, b in zip(merged, np.unique(keys, return_counts=True))]
    [True, True]
    """
    if keys.size < max(WITH_POLARS_FROM, 1):
        distinct, inverse = np.unique(keys, return_inverse=True)
        return unsigned_zeros(distinct), np.bincount(inverse, weights=counts, minlength=distinct.size).astype(np.int64)
    ordered = pl.DataFrame({"key": keys, "count": counts}).sort("key")
    key, count = ordered["key"].to_numpy(), ordered["count"].to_numpy().astype(np.int64)
    starts = run_starts(key)
    return unsigned_zeros(key[starts]), np.add.reduceat(count, starts)


def run_lengths(sorted_values: FloatArray) -> tuple[FloatArray, CountArray]:
    """Distinct values of a sorted array and how often each occurs (linear time).

    >>> run_lengths(np.array([1.0, 1.0, 2.0, 5.0, 5.0, 5.0]))
    (array([1., 2., 5.]), array([2, 1, 3]))
    """
    if sorted_values.size == 0:
        return sorted_values, np.zeros(0, dtype=np.int64)
    starts = run_starts(sorted_values)
    counts = np.diff(np.append(starts, sorted_values.size)).astype(np.int64)
    return sorted_values[starts], counts


@dataclass(frozen=True)
class NumericalSample:
    """Finite values, sorted, plus counts of what was dropped.

    With ``weights``, ``values`` are distinct and ``weights`` says how often each occurs.
    A streaming sample may be approximate: each value then stands for values within a relative
    ``relative_error`` of it (a sketch's buckets), and ``bounds`` keeps the exact minimum and
    maximum.
    """

    values: FloatArray
    rows: int
    missing: int
    infinite: int
    unparsable: int = 0
    weights: CountArray | None = None
    bounds: tuple[float, float] | None = None
    relative_error: float = 0.0

    @property
    def low(self) -> float:
        """The smallest finite value (exact, also for an approximate sample)."""
        return self.bounds[0] if self.bounds is not None else float(self.values[0])

    @property
    def high(self) -> float:
        """The largest finite value (exact, also for an approximate sample)."""
        return self.bounds[1] if self.bounds is not None else float(self.values[-1])

    @property
    def count(self) -> int:
        """Number of finite values."""
        return int(self.weights.sum()) if self.weights is not None else int(self.values.size)

    def expanded(self) -> FloatArray:
        """Every finite value, sorted (repeats spelled out)."""
        if self.weights is None:
            return self.values
        return np.repeat(self.values, self.weights)

    def distinct(self) -> FloatArray:
        """The distinct finite values, sorted."""
        return self.values if self.weights is not None else run_lengths(self.values)[0]

    @classmethod
    def from_values(
        cls, values: FloatArray, rows: int, missing: int, infinite: int, unparsable: int = 0
    ) -> NumericalSample:
        """Sort finite values; keep them as distinct values + counts when that is smaller."""
        ordered = sorted_copy(values)
        distinct, counts = run_lengths(ordered)
        if distinct.size * 2 <= ordered.size:
            return cls(distinct, rows, missing, infinite, unparsable, counts)
        return cls(ordered, rows, missing, infinite, unparsable)

    @classmethod
    def from_series(cls, series: pl.Series, unparsable: int = 0) -> NumericalSample:
        raw = series.cast(pl.Float64).to_numpy(allow_copy=True)
        nan_mask = np.isnan(raw)
        inf_mask = np.isinf(raw)
        return cls.from_values(
            raw[~(nan_mask | inf_mask)], len(raw), int(nan_mask.sum()) - unparsable, int(inf_mask.sum()), unparsable
        )


@dataclass(frozen=True)
class CategoricalSample:
    """The sorted labels of a categorical column and how often each occurs (missing removed).

    Counts are all the tests need but one, so no code per row is kept (at 1M rows that saved
    ~30 MB of peak memory) - except ``codes`` for a column whose configured test is TVD and
    whose labels are integers, in the exact engine: each present value's index into ``labels``,
    in row order. Evidently's TVD p-value permutes the rows, and with them churnops computes
    the same p-value (:func:`~churnops.monitor.stattests.tvd`).
    """

    labels: list[Any]
    counts: CountArray
    rows: int
    missing: int
    unparsable: int = 0
    codes: NDArray[np.uint32] | None = field(default=None, repr=False, compare=False)

    @property
    def count(self) -> int:
        """Number of present values."""
        return int(self.counts.sum())

    def keeping(self, keep: list[int]) -> CategoricalSample:
        """The sample with the labels at ``keep`` only (the others' values left out of the counts,
        rows and missing as they were; no row codes).

        >>> CategoricalSample(["a", "b", "c"], np.array([1, 2, 3]), 7, 1).keeping([0, 2]).labels
        ['a', 'c']
        """
        return CategoricalSample(
            [self.labels[i] for i in keep], self.counts[keep], self.rows, self.missing, self.unparsable
        )

    @classmethod
    def from_series(cls, series: pl.Series, unparsable: int = 0) -> CategoricalSample:
        """
        >>> CategoricalSample.from_series(pl.Series(["b", None, "a", "b"]))
        CategoricalSample(labels=['a', 'b'], counts=array([1, 2]), rows=4, missing=1, unparsable=0)
        """
        rows = series.len()
        present = shorten_labels(series.drop_nulls())
        if present.dtype.is_float():
            present = present.filter(present.is_finite())
        counted = present.alias("value").value_counts(sort=False)  # a column may be called 'count'
        labels = sort_labels(counted[:, 0].to_list())
        position = {label: i for i, label in enumerate(labels)}
        counts = np.zeros(len(labels), dtype=np.int64)
        counts[[position[label] for label in counted[:, 0].to_list()]] = counted[:, 1].to_numpy()
        return cls(labels, counts, rows, rows - len(present) - unparsable, unparsable)


def align_category_counts(
    reference: CategoricalSample, current: CategoricalSample
) -> tuple[CountArray, CountArray, list[Any]]:
    """Counts of both samples on the sorted union of their labels.

    >>> ref = CategoricalSample.from_series(pl.Series(["b", "a", "b"]))
    >>> cur = CategoricalSample(["b", "c"], np.array([1, 1]), 2, 0)
    >>> align_category_counts(ref, cur)
    (array([1, 2, 0]), array([0, 1, 1]), ['a', 'b', 'c'])
    """
    if reference.labels == current.labels:
        return reference.counts, current.counts, list(reference.labels)
    union = sort_labels(set(reference.labels) | set(current.labels))
    position = {label: i for i, label in enumerate(union)}
    ref_counts = np.zeros(len(union), dtype=np.int64)
    cur_counts = np.zeros(len(union), dtype=np.int64)
    ref_counts[[position[label] for label in reference.labels]] = reference.counts
    cur_counts[[position[label] for label in current.labels]] = current.counts
    return ref_counts, cur_counts, union


def label_order(labels: list[Any]) -> NDArray[np.intp]:
    """The positions that put ``labels`` in :func:`sort_labels` order.

    >>> label_order(["b", "c", "a"]).tolist()
    [2, 0, 1]
    """
    try:
        order = sorted(range(len(labels)), key=labels.__getitem__)
    except TypeError:
        order = sorted(range(len(labels)), key=lambda i: str(labels[i]))
    return np.array(order, dtype=np.intp)


def sort_labels(labels: Any) -> list[Any]:
    """Labels in ascending order (by their text when their types cannot be compared)."""
    try:
        return sorted(labels)
    except TypeError:
        return sorted(labels, key=str)


Sample = NumericalSample | CategoricalSample
