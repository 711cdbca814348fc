"""``churnops init``: a commented ``churnops.toml`` inferred from a user's own data.

The file is a starting point to edit, not a verdict: it names the columns it found with the type
churnops infers for each, guesses the target (a two-valued column named like a label), the
identifiers (unique whole numbers that only grow, or a declared-looking name with unique values)
and the date columns (text that parses as dates), and explains every key it writes. Whatever it
writes is validated by loading it back before it is saved.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from churnops.data.io import (
    DECIMAL_COMMA,
    DEFAULT_DIALECT,
    GROUPED_DECIMAL_COMMA,
    CsvDialect,
    TableReader,
    table_format,
)
from churnops.data.io import INFER_ROWS as READ_INFER_ROWS
from churnops.escape import one_line, plural
from churnops.monitor.prepare import (
    DATE_SHARE,
    DECIMAL_COMMA_SHARE,
    ONE_GROUP,
    CategoricalSample,
    NumbersAsText,
    almost_numbers,
    coerce_numerical,
    mostly_dates,
    numbers_as_text,
)
from churnops.monitor.profile import IDENTIFIER_REASON, ProfileBuilder
from churnops.monitor.settings import MonitorSettings

SAMPLE_ROWS = 50_000
"""Rows read to infer types (the profile of a whole large file is not needed for a first guess)."""
TARGET_WORDS = (
    "churn", "churned", "exited", "attrition", "target", "label", "y", "default", "fraud", "outcome", "lapsed",
    "lapse", "cancelled", "canceled", "cancellation", "terminated", "disconnected", "deactivated", "port", "ported",
    "unsubscribed", "defected", "delinquent",
)  # fmt: skip
"""Words of a label's name (``churned``, ``Exited``, ``port_out``, ``is_lapsed``)."""
ID_WORDS = ("id", "key", "uuid", "number", "no", "code")
ROW_WORDS = ("row", "line", "index", "idx", "seq", "sequence")
"""Words of a row counter's name (``RowNumber``, ``line_no``): whole numbers that only grow under
such a name are row numbers - a batch joined from two exports counts from 1 twice - not
identifiers checked for repeats."""
ID_MISSING_SHARE = 0.05
"""Share of a sample's cells an identifier may leave empty."""
ID_REPEAT_SHARE = 0.01
"""Share of a sample's present identifiers that may repeat an earlier one: a reference with a
customer twice still has an identifier, whose repeats in the batch are worth checking."""
ENTITIES = ("customer", "client", "account", "user", "member", "contract", "policy", "order", "transaction")
JOINED_IDS = frozenset(f"{entity}{suffix}" for entity in ENTITIES for suffix in ("id", "no", "number", "num", "key"))
"""Identifier names written as one word (``customerid``, ``ACCOUNTNUMBER``)."""


@dataclass(frozen=True)
class ColumnGuess:
    name: str
    kind: str
    """numerical, categorical, datetime, text, id, row number or unknown."""
    detail: str
    values: int | None = None
    """Distinct values of a categorical column."""
    labels: tuple[Any, ...] = ()
    """A two-valued categorical column's values, in order."""


def _positive_lines(target: ColumnGuess | None) -> list[str]:
    """The ``target_positive`` line for a label of two values other than 0/1: the value read as
    the event, or a line to fill in when nothing tells which it is."""
    if target is None or len(target.labels) != 2:
        return []
    from churnops.monitor.summaries import label_text
    from churnops.monitor.target import positive_index

    index, decided = positive_index(list(target.labels), None)
    if decided == "1/true" or index is None:
        return []
    texts = [label_text(label) for label in target.labels]
    if decided == "words":
        return [f"target_positive = {_value(texts[index])}    # the value counted in its rate (the churners); "
                f"the other: {_value(texts[1 - index])}"]  # fmt: skip
    return [f'target_positive = ""    # CHECK: which value marks a churner, {_value(texts[0])} or '
            f"{_value(texts[1])}? Empty: {_value(texts[index])} (the last in order), with a notice"]  # fmt: skip


def _words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def _looks_like_dates(series: pl.Series) -> bool:
    if series.dtype != pl.String:
        return series.dtype.is_temporal()
    return mostly_dates(series.drop_nulls())


def _sample_bytes(path: Path, rows: int) -> int:
    """CSV piece size for a sample of ``rows`` rows: about their size (from the first 64 kB), so
    that sampling parses no more than it keeps - parsing costs per row, not per piece."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    line = len(head) / max(head.count(b"\n"), 1)
    return int(min(max(line * rows * 1.1, 1 << 16), 64 << 20))


def sample_frame(
    path: Path, dialect: CsvDialect, sample_rows: int, columns: list[str] | None = None
) -> tuple[list[str], pl.DataFrame | None]:
    """The file's header and its first ``sample_rows`` rows (None when it has none); of
    ``columns`` only, when given."""
    reader = TableReader(path, columns=columns, dialect=dialect, chunk_bytes=_sample_bytes(path, sample_rows))
    reader.ahead = False  # the first piece usually holds the sample: none parsed beyond it
    chunks: list[pl.DataFrame] = []
    rows = 0
    for chunk in reader:
        chunks.append(chunk)
        rows += chunk.height
        if rows >= sample_rows:
            break
    if not chunks:
        return reader.header, None
    return reader.header, pl.concat(chunks, how="vertical_relaxed").head(sample_rows)


def unique_where_present(series: pl.Series) -> bool:
    """Whether the present values of ``series`` are unique but for at most
    :data:`ID_REPEAT_SHARE` of them, with at most :data:`ID_MISSING_SHARE` of its cells empty: an
    export's few empty or repeated identifiers do not make them values to test.

    >>> unique_where_present(pl.Series([*range(300), 7])), unique_where_present(pl.Series([1, 2, 3, 1]))
    (True, False)
    """
    present = series.drop_nulls()
    distinct = present.n_unique()
    return present.len() >= (1 - ID_MISSING_SHARE) * series.len() and distinct >= (1 - ID_REPEAT_SHARE) * present.len()


def infer_columns(path: Path, dialect: CsvDialect = DEFAULT_DIALECT) -> tuple[list[ColumnGuess], int]:
    """Each column's inferred kind, from the first :data:`SAMPLE_ROWS` rows; and the rows read."""
    _, frame = sample_frame(path, dialect, SAMPLE_ROWS)
    if frame is None:
        return [], 0
    csv = table_format(path) == "csv"
    guesses = guess_columns(frame, text_numbers=csv)
    if csv:
        codes = dict(
            padded_code_columns(
                frame, lambda names, rows=None: written_cells(path, dialect, names, rows or frame.height)
            )
        )
        guesses = [
            (
                ColumnGuess(guess.name, "text", f"codes written with leading zeros, such as {codes[guess.name]!r}, "
                            "more than half of them distinct: free text, not tested")
                if as_free_text(frame, guess.name)
                else ColumnGuess(
                    guess.name, "categorical", f"codes written with leading zeros, such as {codes[guess.name]!r}",
                    frame[guess.name].n_unique(),
                )
            )
            if guess.name in codes and guess.kind in ("numerical", "categorical")
            else guess
            for guess in guesses
        ]  # fmt: skip
        if dialect.decimal == ".":  # as monitor decides them (a decimal comma's own notices say its columns)
            guessed = {guess.name for guess in guesses if guess.kind in ("categorical", "text", "unknown")}
            skip = set(frame.columns) - guessed
            _, measures = almost_number_columns(frame.head(INFER_ROWS), skip)  # monitor's rows
            # a column whose first rows, those the reader types a column from, are all numbers:
            # monitor reads it as numbers, the later typos as cells that are not
            measures += [
                (name, found.strays, found.present, found.example)
                for name in sorted(guessed - {m[0] for m in measures})
                if frame.schema[name] == pl.String
                and _numbers_at_first(frame.get_column(name))
                and (found := almost_numbers(frame.get_column(name)) or numbers_as_text(frame.get_column(name)))
            ]
            typos = {name: (others, example) for name, others, _, example in measures if others}
            guesses = [
                ColumnGuess(
                    guess.name, "numerical", f"numbers but for {typos[guess.name][0]:,} "
                    f"{plural(typos[guess.name][0], 'cell that is not a number', 'cells that are not numbers')}, "
                    f"e.g. {typos[guess.name][1]!r}",
                )
                if guess.name in typos
                else guess
                for guess in guesses
            ]  # fmt: skip
    else:  # a Parquet file's amounts held as text, tested as numbers as monitor tests them
        skip = {guess.name for guess in guesses if guess.kind not in ("categorical", "text", "unknown")}
        held = {
            name: (others, example) for name, others, _, example in text_measure_columns(frame.head(INFER_ROWS), skip)
        }
        guesses = [
            ColumnGuess(
                guess.name, "numerical",
                f"{HELD_AS_TEXT}; {held[guess.name][0]:,} "
                f"{plural(held[guess.name][0], 'cell is not a number', 'cells are not numbers')}, "
                f"e.g. {held[guess.name][1]!r}"
                if held[guess.name][0] else f"{HELD_AS_TEXT}, e.g. {held[guess.name][1]!r}",
            )
            if guess.name in held
            else guess
            for guess in guesses
        ]  # fmt: skip
    return guesses, frame.height


HELD_AS_TEXT = "numbers the Parquet file holds as text"
"""How ``init`` describes a Parquet file's amounts held as text, which it lists as numerical."""


def padded_code_columns(
    frame: pl.DataFrame, written: Callable[..., dict[str, list[str]]], skip: Collection[str] = ()
) -> list[tuple[str, str]]:
    """Whole-number columns of a CSV sample written as codes: every cell the same number of
    digits, two values or more with leading zeros (``01040``, a postcode; one such value among
    numbers is a placeholder, ``0000``, or a stray cell) - a reader drops the zeros and takes
    them for numbers, where the same column in a Parquet file is text. (column, an example).
    ``written(names, rows=None)`` gives the sample's cells of those columns as the file writes
    them (its first ``rows`` only, when given). Asked for: columns whose numbers have different
    lengths (as a dropped zero makes them), and columns whose numbers all have one length but
    whose first cells are written with a leading zero (codes that all begin with 0: ``01000`` to
    ``02999``).

    >>> frame = pl.DataFrame({"zip": [1040, 75001, 9100], "n": [7, 12, 3], "pad": [7, 12, 3], "s": [650, 700, 815]})
    >>> cells = {"zip": ["01040", "75001", "09100"], "n": ["7", "12", "3"], "pad": ["007", "012", "003"]}
    >>> cells |= {"s": ["650", "700", "815"]}
    >>> padded_code_columns(frame, lambda names, rows=None: {name: cells[name][:rows] for name in names})
    [('zip', '01040'), ('pad', '007')]
    >>> frame = pl.DataFrame({"dept": [1040, 2100, 1999]})
    >>> padded_code_columns(frame, lambda names, rows=None: {"dept": ["01040", "02100", "01999"][:rows]})
    [('dept', '01040')]
    """
    names = [name for name, dtype in frame.schema.items() if dtype.is_integer() and name not in skip]
    if not names:
        return []
    shapes = frame.select(
        [
            pl.struct(
                (pl.col(name).min() >= 0).alias("whole"),
                (pl.col(name).cast(pl.String).str.len_chars().n_unique() > 1).alias("varied"),
            ).alias(name)
            for name in names
        ]
    ).row(0)
    varied = [name for name, shape in zip(names, shapes, strict=True) if shape["whole"] and shape["varied"]]
    same = [name for name, shape in zip(names, shapes, strict=True) if shape["whole"] and not shape["varied"]]
    if same:  # one length: padded cells are all padded, so the first ones tell
        first = written(same, rows=FIRST_CELLS)
        varied += [name for name in same if any(_leading_zero(text) for text in first.get(name, []))]
    if not varied:
        return []
    cells = written(varied)
    found = []
    for name in varied:
        texts = pl.Series(cells.get(name, []), dtype=pl.String).str.strip_chars()
        texts = texts.filter(texts.is_not_null() & (texts != ""))
        lengths = texts.str.len_bytes()
        if texts.is_empty() or lengths.n_unique() != 1 or not texts.str.contains(r"^[0-9]+$").all():
            continue  # one length, digits only: a dropped zero makes numbers of other lengths
        padded = texts.filter(texts.str.starts_with("0") & (lengths > 1))
        if padded.n_unique() >= 2:  # one such value: a placeholder
            found.append((name, str(padded[0])[:20]))
    return [pair for name in names for pair in found if pair[0] == name]


def as_free_text(frame: pl.DataFrame, name: str) -> bool:
    """Whether the column ``name`` of a sample has more than half of its values distinct: as text
    (codes written with leading zeros are text in a Parquet file), it is free text, not tested.

    >>> frame = pl.DataFrame({"a": [1, 2, 3, None], "b": [1, 1, 2, 2]})
    >>> as_free_text(frame, "a"), as_free_text(frame, "b")
    (True, False)
    """
    values = frame[name].drop_nulls()
    return values.len() > 0 and values.n_unique() * 2 > values.len()


FIRST_CELLS = 20
"""Cells read to tell whether a column of numbers of one length is written with leading zeros."""


def _leading_zero(text: str) -> bool:
    text = text.strip()
    return len(text) > 1 and text.startswith("0")


def guess_columns(frame: pl.DataFrame, text_numbers: bool = False) -> list[ColumnGuess]:
    """Each column's inferred kind in a sample of rows (``text_numbers``: a CSV's, whose text
    columns may hold numbers - see :class:`~churnops.monitor.profile.ProfileBuilder`)."""
    builder = ProfileBuilder(frame.columns, MonitorSettings(target=None, detect_ids=True), text_numbers=text_numbers)
    builder.update(frame)
    profile = builder.finish()
    guesses = []
    for name in frame.columns:
        column = profile.columns[name]
        series = frame[name]
        distinct = series.n_unique()
        named = named_like_id(name)
        counter = column.skip_reason == IDENTIFIER_REASON and any(w in ROW_WORDS for w in _words(name))
        measured = _fractional(series)  # key_ratio: 0.37...
        if frame.height and unique_where_present(series) and named and not counter and not measured:
            # before the row numbers: an export sorted by customer_id is no less an identifier,
            # checked for repeats (as a row number is not)
            guesses.append(ColumnGuess(name, "id", "a unique value per row, named like an identifier"))
        elif column.skip_reason == IDENTIFIER_REASON:
            guesses.append(ColumnGuess(name, "row number", "unique whole numbers that only grow or fall"))
        elif isinstance(series.dtype, pl.Date | pl.Datetime):
            guesses.append(ColumnGuess(name, "datetime", "stored as dates in the file"))
        elif column.plan.column_type in ("text", "categorical") and _looks_like_dates(series):
            guesses.append(ColumnGuess(name, "datetime", "text that reads as dates"))
        elif column.plan.column_type == "categorical":
            sample = column.sample
            values = len(sample.labels) if isinstance(sample, CategoricalSample) else distinct
            two = tuple(sample.labels) if isinstance(sample, CategoricalSample) and len(sample.labels) == 2 else ()
            guesses.append(ColumnGuess(name, "categorical", f"{values} values", values, two))
        elif column.plan.column_type == "numerical":
            guesses.append(ColumnGuess(name, "numerical", "numbers"))
        elif column.plan.column_type == "text":
            guesses.append(ColumnGuess(name, "text", "free text (more than half the values distinct): not tested"))
        else:
            guesses.append(ColumnGuess(name, "unknown", "no usable value"))
    return guesses


NOT_NUMBERS_BESIDE = (
    "other cells of these columns hold digits but are no numbers (such as '#DIV/0!', '<0,5' or '1.234,56-'); "
    "clear those cells, or export the numbers alone"
)
"""Why numbers stay text in a file read with a decimal comma (:func:`decimal_comma_columns`)."""


def decimal_comma_columns(frame: pl.DataFrame, dialect: CsvDialect) -> list[tuple[str, str]]:
    """Text columns of a CSV sample whose values are (almost all) numbers written with a decimal
    comma, like ``51602,16``, with an example each - when the file is read with a decimal point;
    and numbers grouped with thousands dots or spaces (``4.164,11``, ``4 164,11``), which only a
    file read with a decimal comma reads as numbers (its reader gives them here as ``4164.11``).

    ``7,815`` is also a thousands separator's: a column of them is one of decimal commas only
    with a share of cells that no thousands separator writes (``0,512``, ``12,5``), as the
    monitoring reads them (:data:`~churnops.monitor.prepare.DECIMAL_COMMA_SHARE`).

    >>> frame = pl.DataFrame({"n": ["7,815", "999", "18,604"] * 20, "d": ["7,815", "0,512", "18,6"] * 20})
    >>> decimal_comma_columns(frame, DEFAULT_DIALECT)
    [('d', '7,815')]
    """
    found = []
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        values = frame.get_column(name).drop_nulls()
        if not values.len():
            continue
        plain = values.str.contains(DECIMAL_COMMA.pattern)  # with a decimal comma, left as text
        grouped = values.str.contains(GROUPED_DECIMAL_COMMA.pattern)
        share = (plain | grouped).mean()
        only_commas = grouped | (plain & ~values.str.strip_chars().str.contains(ONE_GROUP))
        if share >= DATE_SHARE and only_commas.sum() >= max(1, DECIMAL_COMMA_SHARE * values.len()):
            found.append((name, str(values[0])))
    return found


def thousands_point_columns(
    frame: pl.DataFrame, written: Callable[[list[str]], dict[str, list[str]]] | None = None
) -> list[tuple[str, str]]:
    """Decimal columns of a CSV sample whose points look like thousands separators (``3.283``
    for 3283, a European export read with a decimal point), with an example each: at least
    :data:`THOUSANDS_POINT_MIN` numbers have a point; every one of them has one to three digits
    before it, none of them 0, and at most three after it, nine in ten exactly three (a group
    written ``3.280`` reads 3.28); whole numbers - written without a point below 1,000 - are at
    least 2% of the values, and none reaches 1,000 (it would have been grouped).

    A column of numbers that all reach 1,000 has no whole number to tell it from a measure with
    three decimals (coordinates, rates): ``written(names)``, when given, returns the sample's
    cells of those columns as the file writes them, and the column is taken when every cell is
    written with exactly three digits after the point and at least :data:`GROUP_ZEROS` of them
    end in 0 - a group keeps its zeros (``45.120``), a decimal number is written without them.

    >>> thousands_point_columns(pl.DataFrame({"a": [3.283, 1.001, 12.5, 443.0] * 10}))
    []
    >>> thousands_point_columns(pl.DataFrame({"a": [3.283, 1.001, 12.046, 443.0, 998.0] * 10}))
    [('a', '3.283')]
    >>> thousands_point_columns(pl.DataFrame({"lat": [48.137, 52.52, 50.111, 53.551, 48.775] * 10}))
    []
    >>> texts = ["48.137", "52.520", "50.111", "53.551", "48.775"] * 10
    >>> thousands_point_columns(pl.DataFrame({"pay": [float(t) for t in texts]}), lambda names: {"pay": texts})
    [('pay', '48.137')]
    """
    found = []
    unsure = []  # every number has a point: only how they are written can tell
    for name, dtype in frame.schema.items():
        if not dtype.is_float():
            continue
        values = frame.get_column(name).drop_nulls().drop_nans()
        whole = values.filter(values == values.floor())
        pointed = values.filter(values != values.floor())
        if pointed.len() < THOUSANDS_POINT_MIN or (whole.len() and float(whole.abs().max()) >= 1000):
            continue
        thousandths = (pointed.abs() * 1000).round(6)
        if not (thousandths == thousandths.round(0)).all() or not (pointed.abs() >= 1).all():
            continue
        if float(pointed.abs().max()) >= 1000:
            continue
        if whole.len() < max(5, 0.02 * values.len()):  # below 1,000 a grouped export writes no point at all;
            unsure.append(name)  # three-decimal measures (coordinates, rates, weights) are rarely whole
            continue
        exact = ((thousandths.round(0) % 10) != 0).mean()
        if exact is not None and float(exact) >= 0.8:
            found.append((name, f"{float(pointed[0]):.3f}"))
    if unsure and written is not None:
        cells = written(unsure)
        for name in unsure:
            texts = [text.strip() for text in cells.get(name, []) if text.strip()]
            grouped = bool(texts) and all(_GROUPED.fullmatch(text) for text in texts)
            if grouped and sum(text.endswith("0") for text in texts) >= GROUP_ZEROS * len(texts):
                found.append((name, texts[0]))
    order = {name: index for index, name in enumerate(frame.columns)}
    return sorted(found, key=lambda pair: order[pair[0]])


THOUSANDS_POINT_MIN = 20
"""Numbers with a point a sample must hold before their points are taken for thousands groups."""
GROUP_ZEROS = 0.03
"""Share of a column's cells ending in 0 after a point (``45.120``) that shows the point groups
thousands, when every number is written with three digits after it (about one in ten does)."""
_GROUPED = re.compile(r"-?[1-9]\d{0,2}\.\d{3}")


_GROUPED_ONLY = re.compile(r"[+-]?[1-9]\d{0,2}(\.\d{3})+")
_POINT_DECIMAL = re.compile(r"[+-]?\d*\.\d+([eE][+-]?\d+)?")
_COMMA_NUMBER = re.compile(r"(^|\D)\d*,\d")


def two_scale_columns(
    frame: pl.DataFrame, written: Callable[[list[str]], dict[str, list[str]]]
) -> list[tuple[str, str, str]]:
    """Columns of a CSV sample read with a decimal comma whose numbers are written with decimal
    points, read at two scales: a cell whose point can group digits as thousands (``2.500``) is
    read so (2500), one whose point cannot (``0.625``, ``12.5``) as a decimal (0.625). A column
    with a number written with a decimal comma is not one (its points group digits).
    ``written(names)`` returns the sample's cells of those columns as the file writes them.
    (column, a cell read as thousands, a cell read as a decimal).

    >>> cells = {"rate": ["2.500", "0.625", "n/a", "4.750"], "count": ["15.992", "578", "1.234"],
    ...          "amount": ["1.234,5", "0.5"], "code": ["A.1", "0.578"]}
    >>> two_scale_columns(pl.DataFrame({n: [1.0] * 2 for n in cells}), lambda names: cells)
    [('rate', '2.500', '0.625')]
    """
    names = [name for name, dtype in frame.schema.items() if dtype.is_float() or dtype == pl.String]
    if not names:
        return []
    cells = written(names)
    found = []
    for name in names:
        texts = [text.strip() for text in cells.get(name, [])]
        if any(_COMMA_NUMBER.search(text) for text in texts):
            continue
        grouped = next((text for text in texts if _GROUPED_ONLY.fullmatch(text)), None)
        decimal = next(
            (text for text in texts if _POINT_DECIMAL.fullmatch(text) and not _GROUPED_ONLY.fullmatch(text)), None
        )
        if grouped is not None and decimal is not None:
            found.append((name, grouped[:20], decimal[:20]))
    return found


def written_cells(path: Path, dialect: CsvDialect, names: list[str], rows: int) -> dict[str, list[str]]:
    """The first ``rows`` cells of the columns ``names`` of a CSV file, as written."""
    if dialect.utf8 and rows > FIRST_CELLS:  # read by polars as text: a tenth of the time of Python's csv module
        try:
            frame = pl.read_csv(
                path, columns=names, n_rows=rows, infer_schema=False, separator=dialect.separator,
                encoding="utf8", empty_string_is_null=False, truncate_ragged_lines=True,
            )  # fmt: skip
            if all(name in frame.columns for name in names):
                return {name: frame[name].fill_null("").to_list() for name in names}
        except (pl.exceptions.PolarsError, OSError, ValueError):
            pass  # a header polars reads otherwise: Python's csv module below
    import csv
    import itertools

    encoding = "utf-8-sig" if dialect.utf8 else dialect.encoding
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        lines = csv.reader(handle, delimiter=dialect.separator)
        header = [name.strip() for name in next(lines, [])]
        wanted = {name: header.index(name) for name in names if name in header}
        cells: dict[str, list[str]] = {name: [] for name in wanted}
        for line in itertools.islice(lines, rows):
            for name, index in wanted.items():
                if index < len(line):
                    cells[name].append(line[index])
    return cells


def numbers_as_text_columns(frame: pl.DataFrame, skip: set[str]) -> list[tuple[str, int, int, str]]:
    """Text columns of a sample that hold numbers the reader could not type, as the monitoring
    reads them (:func:`churnops.monitor.prepare.numbers_as_text`): numbers written with digit
    group separators, a currency or a percent sign, or numbers but for a few cells without a
    digit (``n/a yet``, ``-``, ``?``). (column, cells that are not numbers, cells, an example)."""
    return _text_columns_found(frame, skip, numbers_as_text)


def _text_columns_found(
    frame: pl.DataFrame, skip: set[str], find: Callable[[pl.Series], NumbersAsText | None]
) -> list[tuple[str, int, int, str]]:
    """The text columns of a sample, but ``skip``, in which ``find`` finds numbers: (column,
    cells that are not numbers, cells, an example)."""
    found = []
    for name, dtype in frame.schema.items():
        if dtype != pl.String or name in skip:
            continue
        numbers = find(frame.get_column(name))
        if numbers is not None:
            found.append((name, numbers.strays, numbers.present, numbers.example))
    return found


def almost_number_columns(
    frame: pl.DataFrame, skip: set[str]
) -> tuple[list[tuple[str, int, int, str]], list[tuple[str, int, int, str]]]:
    """Text columns of a sample that hold numbers but for a few cells with digits
    (:func:`churnops.monitor.prepare.almost_numbers`), each as (column, cells that are not
    numbers, cells, an example): those of whole numbers of at most :data:`CODE_VALUES` values,
    which may be codes (``2A`` beside ``19``), left categories - not those that are free text
    (untested, said otherwise); and measures with a typo (``12,5`` among ``65.23``, ``$88.66`` or
    ``1.5e3``; or among more whole numbers than codes have), tested as numbers: as categories,
    thousands of distinct amounts drifted at the first new one."""
    near, measures = [], []
    for found in _text_columns_found(frame, skip, almost_numbers):
        kind = _numbers_kind(frame, found[0])
        if kind == "measure":
            measures.append(found)
        elif kind == "codes":
            near.append(found)
    return near, measures


def _numbers_kind(frame: pl.DataFrame, name: str) -> str:
    """What a sample's text column of numbers (but for a few cells) holds: a ``measure`` (numbers
    with decimals, or more whole numbers than :data:`CODE_VALUES`), ``codes`` (fewer whole
    numbers) or ``free`` text (whole numbers most of them distinct: phone numbers, zip codes)."""
    numbers = coerce_numerical(frame.get_column(name).drop_nulls()).series.drop_nulls()
    free = as_free_text(frame, name)
    if _fractional(numbers) or (numbers.n_unique() > CODE_VALUES and not free):
        return "measure"
    return "free" if free else "codes"


def _numbers_at_first(series: pl.Series) -> bool:
    """Whether the first :data:`INFER_ROWS` cells of a text column are all numbers (or empty)."""
    head = series.head(INFER_ROWS).drop_nulls().str.strip_chars()
    return head.len() > 0 and head.cast(pl.Float64, strict=False).null_count() == 0


def text_measure_columns(frame: pl.DataFrame, skip: set[str]) -> list[tuple[str, int, int, str]]:
    """A Parquet file's text columns of numbers - all of them, or but for a few cells - that look
    like measures (:func:`almost_number_columns`), not codes written with leading zeros: text as
    their writer typed them, but said (a pandas column with one typo is saved as text, where the
    same column read from a CSV file is numbers). (column, cells that are not numbers, cells, an
    example.)"""
    found = []
    for name, dtype in frame.schema.items():
        if dtype != pl.String or name in skip:
            continue
        series = frame.get_column(name)
        as_text = numbers_as_text(series)
        numbers = as_text or almost_numbers(series)
        if numbers is None:
            continue
        if series.drop_nulls().str.strip_chars().str.contains(r"^[+-]?0\d").any():
            continue  # codes written with leading zeros (01040): text
        # numbers but for cells without a digit ('n/a', '-'): numbers, as a CSV file's (however
        # many distinct values); all numbers, or with typos of digits: when they look like amounts
        if (as_text is not None and as_text.strays) or _numbers_kind(frame, name) == "measure":
            found.append((name, numbers.strays, numbers.present, numbers.example))
    return found


CODE_VALUES = 100
"""Distinct whole numbers a column of codes may hold (France's departments, a product's codes);
with more, a column of whole numbers and a few typos is a measure, tested as numbers."""


INFER_ROWS = READ_INFER_ROWS
"""Rows of the reference read by ``monitor`` to infer dates and identifiers among unlisted columns:
as many as the reader types each column from (a typo it sees there makes a column text, which the
sample must see too); an identifier is decided on the :data:`SAMPLE_ROWS` rows ``init`` reads."""


def with_inferred_columns(
    config: Any, sample: pl.DataFrame, wider: Callable[[list[str]], pl.DataFrame | None] | None = None
) -> tuple[Any, list[str], list[str]]:
    """``config`` with the columns it does not list classified as ``churnops init`` would, from a
    sample of the reference's rows: text that reads as dates becomes ``columns.datetime``, a unique
    value per row named like an identifier becomes ``columns.id``. Returns the configuration, the
    dates and the identifiers added."""
    dates, ids = inferred_columns(config, sample, wider)
    return with_columns_added(config, dates, ids), dates, ids


def inferred_columns(
    config: Any, sample: pl.DataFrame, wider: Callable[[list[str]], pl.DataFrame | None] | None = None
) -> tuple[list[str], list[str]]:
    """The dates and the identifiers :func:`with_inferred_columns` adds to ``config``. ``wider``:
    the first :data:`SAMPLE_ROWS` rows of the columns named, where an identifier of a sample of
    :data:`INFER_ROWS` rows must still be unique - as for ``churnops init``, which reads that
    many (a column unique in the first rows only was an identifier here and numbers there)."""
    columns = config.columns
    if not columns.infer:
        return [], []
    listed = listed_columns(config)
    drift = getattr(config, "drift", None)
    if drift is not None and drift.time_column:
        listed.add(drift.time_column)  # it places rows in periods; it is not tested (see settings)
    unlisted = [name for name in sample.columns if name not in listed]
    if not unlisted:
        return [], []
    guesses = guess_columns(sample.select(unlisted))
    dates = [g.name for g in guesses if g.kind == "datetime"]
    ids = [g.name for g in guesses if g.kind == "id" and columns.detect_ids]
    named = [g.name for g in guesses if g.kind in ("id", "numerical", "categorical", "text") and named_like_id(g.name)]
    if named and columns.detect_ids and wider is not None and sample.height >= INFER_ROWS:
        more = wider(named)  # decided on init's rows, either way: a few more empty cells or repeats in
        if more is not None and more.height > sample.height:  # the first rows do not make it no identifier
            ids = [name for name in named if unique_where_present(more[name]) and not _fractional(more[name])]
    return dates, ids


def listed_columns(config: Any) -> set[str]:
    """The columns ``config`` gives a role or a type (its target and prediction among them)."""
    columns = config.columns
    listed = {columns.target, columns.prediction, *columns.id, *columns.ignored, *columns.datetime}
    return listed | {*columns.numerical, *columns.categorical, *columns.binary, *columns.text}


def named_like_id(name: str) -> bool:
    """Whether a column's name says it identifies (``customer_id``, ``ACCOUNTNUMBER``)."""
    return any(w in ID_WORDS or w in JOINED_IDS for w in _words(name))


def _fractional(series: pl.Series) -> bool:
    """Whether a column holds numbers that are not whole (``key_ratio``: 0.37...): a measure."""
    return series.dtype.is_float() and bool((series % 1 != 0).any())


def with_columns_added(
    config: Any,
    dates: list[str],
    ids: list[str],
    categorical: Collection[str] = (),
    text: Collection[str] = (),
    numerical: Collection[str] = (),
) -> Any:
    """``config`` with ``dates`` added to ``columns.datetime``, ``ids`` to ``columns.id``,
    ``categorical`` to ``columns.categorical``, ``text`` to ``columns.text`` and ``numerical`` to
    ``columns.numerical`` (the columns the user set stay the only ones marked as set)."""
    if not dates and not ids and not categorical and not text and not numerical:
        return config
    columns = config.columns
    chosen = set(columns.model_fields_set)
    updated = columns.model_copy(
        update={
            "datetime": [*columns.datetime, *dates],
            "id": [*columns.id, *ids],
            "categorical": [*columns.categorical, *categorical],
            "text": [*columns.text, *text],
            "numerical": [*columns.numerical, *numerical],
        }
    )
    object.__setattr__(updated, "__pydantic_fields_set__", chosen)  # still the user's choices only
    updated._inferred = columns._inferred | {
        *dates,
        *ids,
        *categorical,
        *text,
        *numerical,
    }  # reported as inferred, not set
    return config.model_copy(update={"columns": updated})


def date_writings(sample: pl.DataFrame, names: list[str]) -> dict[str, str | None]:
    """How the text dates of each column in ``names`` are written in ``sample``: a key of
    :data:`~churnops.monitor.prepare.DATE_FAMILIES`, or None when they read both day first and
    month first (``01/05/2024``). Columns of plain ISO dates, of typed dates and of no readable
    date are left out."""
    from churnops.monitor.prepare import date_family

    found: dict[str, str | None] = {}
    for name in names:
        if name not in sample.columns:
            continue
        values = sample[name]
        if isinstance(values.dtype, pl.Categorical | pl.Enum):
            values = values.cast(pl.String)
        if values.dtype != pl.String:
            continue  # already dates (Parquet) or numbers: nothing to read
        text = values.str.strip_chars().drop_nulls()
        text = text.filter(text != "")
        distinct = text.filter(text.str.to_date("%Y-%m-%d", strict=False).is_null()).unique(maintain_order=True)
        if distinct.len() == 0:
            continue  # plain ISO dates: read as such
        family = date_family(distinct)
        if family.ambiguous:
            found[name] = None
        elif family.name is not None:
            found[name] = family.name
    return found


def as_written(name: str, formats: dict[str, str]) -> str:
    """A date column's name with how its dates are written, when that is not ISO 8601 (notices).

    >>> as_written("signup", {"signup": "month-first"}), as_written("born", {})
    ('signup (written month first)', 'born')
    """
    way = formats.get(name, "iso")
    return name if way == "iso" else f"{name} (written {way.replace('-', ' ')})"


def with_date_formats(config: Any, sample: pl.DataFrame) -> tuple[Any, dict[str, str]]:
    """``config`` with how each date column's text is written decided from a sample of the
    reference (``columns.date_formats``), so that every chunk of both files is read the same way;
    the formats decided. ISO 8601 dates need no decision.

    Raises
    ------
    ConfigError
        When a column's dates read both ways (``01/05/2024``) and no format is set.
    """
    decided = decided_date_formats(config, sample)
    return with_formats_added(config, decided), decided


def decided_date_formats(config: Any, sample: pl.DataFrame) -> dict[str, str]:
    """The formats :func:`with_date_formats` adds to ``config`` (raises as it does)."""
    from churnops.errors import ConfigError
    from churnops.escape import one_line_short

    columns = config.columns
    undecided = [name for name in columns.datetime if name not in columns.date_formats]
    decided: dict[str, str] = {}
    for name, way in date_writings(sample, undecided).items():
        if way is None:
            shown = one_line_short(name, 40)
            example = next(v for v in sample[name].cast(pl.String).drop_nulls() if v.strip())
            raise ConfigError(
                f"columns.datetime: the dates of '{shown}' (e.g. {one_line_short(example.strip(), 30)!r}) read as "
                f'day/month and as month/day: set columns.date_formats = {{ "{shown}" = "day-first" }} '
                '(or "month-first", or a format such as "%d/%m/%Y")'
            )
        decided[name] = way
    return decided


def with_formats_added(config: Any, decided: dict[str, str]) -> Any:
    """``config`` with the ``decided`` date formats added to ``columns.date_formats``."""
    if not decided:
        return config
    columns = config.columns
    chosen = set(columns.model_fields_set)
    updated = columns.model_copy(update={"date_formats": {**columns.date_formats, **decided}})
    object.__setattr__(updated, "__pydantic_fields_set__", chosen)  # still the user's choices only
    return config.model_copy(update={"columns": updated})


def _date_format_lines(reference: Path, dialect: CsvDialect, dates: list[str]) -> list[str]:
    """``date_formats = {...}`` for the dates not written as ISO 8601, or a request to say how
    when they read both day first and month first."""
    if not dates:
        return []
    try:
        _, sample = sample_frame(reference, dialect, INFER_ROWS)
    except Exception:  # noqa: BLE001 - the configuration is still useful without the formats
        return []
    if sample is None:
        return []
    ways = date_writings(sample, dates)
    known = {name: way for name, way in ways.items() if way is not None}
    lines = []
    if known:
        lines.append(
            f"date_formats = {{ {', '.join(f'{_value(n)} = {_value(w)}' for n, w in known.items())} }}"
            '    # how the dates are written: iso, day-first, month-first, month-names or "%d/%m/%Y"'
        )
    for name, way in ways.items():
        if way is None:
            lines.append(
                f'# date_formats.{_value(name)} = "day-first"    # REQUIRED: its dates read both as day/month '
                "and as month/day - say which"
            )
    return lines


def label_like(name: str) -> bool:
    """Whether a column's name reads like a label's (:data:`TARGET_WORDS`).

    >>> label_like("port_out"), label_like("Exited"), label_like("data_usage_gb")
    (True, True, False)
    """
    return any(w in TARGET_WORDS for w in _words(name))


def guess_target(guesses: list[ColumnGuess]) -> str | None:
    """The first two-valued column named like a label (``churned``, ``Exited``...), if any."""
    candidates = [g.name for g in guesses if g.kind == "categorical" and g.values == 2 and label_like(g.name)]
    return candidates[0] if candidates else None


def _value(value: Any) -> str:
    """A TOML value on one line (strings escaped as TOML requires).

    >>> print(_value(["row", 'say "hi"']), _value(";"))
    ["row", "say \\"hi\\""] ";"
    """
    import tomli_w

    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def starter_config(
    reference: Path,
    current: Path | None,
    root: Path,
    target: str | None = None,
    dialect: CsvDialect = DEFAULT_DIALECT,
) -> tuple[str, list[ColumnGuess], str | None]:
    """The text of a commented ``churnops.toml`` for ``reference``; the guesses and the target."""
    guesses, rows = infer_columns(reference, dialect)
    chosen_target = target or guess_target(guesses)
    names = [g.name for g in guesses]
    if chosen_target is not None and chosen_target not in names:
        from churnops.errors import ConfigError

        raise ConfigError(
            f"--target: '{chosen_target}' is not a column of {reference} (its columns: {', '.join(names)})"
        )

    def relative(path: Path) -> str:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(path.resolve())

    ids = [g.name for g in guesses if g.kind == "id" and g.name != chosen_target]
    counters = [g.name for g in guesses if g.kind == "row number" and g.name != chosen_target]
    typos = [
        g.name for g in guesses if g.kind == "numerical" and g.detail.startswith(("numbers but for", HELD_AS_TEXT))
    ]
    dates = [g.name for g in guesses if g.kind == "datetime" and g.name != chosen_target]
    # a comment holds no control character (TOML refuses them): names and examples shown escaped
    found = "\n".join(
        f"#   {one_line(g.name)}: {'TARGET - ' if g.name == chosen_target else ''}{g.kind} ({one_line(g.detail)})"
        for g in guesses
    )
    target_note = (
        "guessed: a two-valued column named like a label"
        if chosen_target and not target
        else ("given with --target" if chosen_target else "none found: name your label here to test its rate")
    )
    lines = [
        f"# churnops.toml for {one_line(reference.name)} - written by `churnops init` on {date.today().isoformat()}.",
        "# A starting point: check each guess below, then run `churnops monitor`.",
        f"# Columns found in the first {rows:,} rows, with the type churnops infers:",
        found,
        "",
        "[paths]",
        f"reference = {_value(relative(reference))}    # the data the model learned from",
        f"production = {_value(relative(current) if current else 'data/production/batch.csv')}"
        "    # the batch `churnops monitor` compares with it (or --current FILE)",
        "",
        "[data]",
        'reference_rows = "all"    # the whole reference file; [start, end] keeps a window of rows',
        f"separator = {_value(dialect.separator)}    # CSV field separator; [data.reference] / [data.current] "
        "can differ",
        f"decimal = {_value(dialect.decimal)}    # decimal mark of the CSV files' numbers: '.' or ','",
        f"encoding = {_value(dialect.encoding)}    # text encoding of the CSV files (cp1252, latin-1 for some "
        "spreadsheet exports)",
        "",
        "[columns]",
        (f"target = {_value(chosen_target)}" if chosen_target else 'target = ""')
        + f"    # the label: its rate is tested (target drift) - {target_note}",
        *_positive_lines(next((g for g in guesses if g.name == chosen_target), None)),
        f"id = {_value(ids)}    # identifiers: checked for repeats, never tested for drift",
        f"ignored = {_value(counters)}    # columns to leave out entirely (row numbers, names, free text, leakage)",
        f"datetime = {_value(dates)}    # dates: tested as numbers of days, shown as dates",
        *_date_format_lines(reference, dialect, dates),
        (
            f"numerical = {_value(typos)}    # numbers held as text or but for a few cells, which count as not "
            "numbers (as categories, every new amount would be a new category)\n"
            "# categorical = []    # override an inferred type"
            if typos
            else "# numerical = []; categorical = []    # override an inferred type"
        ),
        "domains = {}    # allowed [min, max] per column, e.g. { age = [18, 120] }: values outside are quality errors",
        "",
        "[thresholds]",
        "dataset_drift = 0.1    # alert when more than this share of columns drifted (the original project's rule)",
        "column_drift = 0.1    # threshold of distance tests (normed Wasserstein, Jensen-Shannon)",
        "data_quality = 0.95    # quality score below this is a warning",
        'trigger_on = ["data", "target", "model"]    # findings that write trigger.txt; add "quality" to alert on it',
        "",
    ]
    return "\n".join(lines), guesses, chosen_target
