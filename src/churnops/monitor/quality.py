"""Data quality of the current batch.

The quality score is the share of current cells, over the monitored columns, that pass every
*error* check: present, parseable as the column's type, finite, inside the configured domain,
and not in a row that repeats an earlier row. *Warnings* - values outside the reference's
range, categories the reference never had, constant columns, repeated identifiers, columns the
reference does not have or has no value of - are reported but do not lower the score. Below
``thresholds.data_quality`` (the seed's 0.95) the batch gets a quality warning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from churnops.data.io import DECIMAL_COMMA, GROUPED_DECIMAL_COMMA, NULL_VALUES, table_format
from churnops.errors import InputDataError
from churnops.escape import plural
from churnops.monitor.batch import BatchTally, ColumnTally
from churnops.monitor.prepare import CategoricalSample, NumericalSample
from churnops.monitor.results import FEW_ROWS, DataQuality, DatasetInfo, QualityCheck
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.summaries import label_text, sorted_quantiles
from churnops.monitor.target import batch_labels

EXAMPLES = 5


MOSTLY_UNUSABLE = 0.5
"""A column with at least this share of missing or unusable values (and half of it new since the
reference) fails the data quality check on its own."""


def _share(count: int, rows: int) -> float:
    return count / rows if rows else 0.0


DECIMAL_COMMA_ADVICE = "; decimal commas: set data.current.decimal = ','"
"""Said of a batch's numerical column whose cells are mostly numbers written with a decimal comma."""


def decimal_comma_advice(settings: MonitorSettings, batch_format: str | None) -> str:
    """What reads a batch's decimal commas: ``data.current.decimal`` - but not in a file whose
    values a comma separates (the setting needs another separator), nor in a Parquet file
    (which holds such numbers as text: only its writer can make them numbers).

    >>> decimal_comma_advice(MonitorSettings(current_separator=";"), "csv") == DECIMAL_COMMA_ADVICE
    True
    >>> decimal_comma_advice(MonitorSettings(), "csv")[:71]
    "; decimal commas in a comma-separated file: export it with separator ';"
    """
    if batch_format == "parquet":
        return "; decimal commas held as text in a Parquet file: save the column as numbers"
    if settings.current_separator == ",":
        return "; decimal commas in a comma-separated file: export it with separator ';', then set data.current.decimal"
    return DECIMAL_COMMA_ADVICE


DATE_ORDERS = {"day-first": "month first", "month-first": "day first"}
_NUMERIC_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?:[ T].*)?")


def _other_order(way: str, examples: Sequence[object]) -> str:
    """Advice for a date column read ``way`` (``day-first``) whose cells that are not dates are
    all written the other way round (``12/31/2024`` where 31/12/2024 is read): the batch's other
    dates, 12 or less on both sides, are then likely read with day and month swapped.

    >>> _other_order("day-first", ["12/31/2024", "01/13/2025"])
    '; written month first? (12/31/2024; the reference: day first)'
    >>> _other_order("day-first", ["31/12/2024"]), _other_order("day-first", ["soon"]), _other_order("day-first", [])
    ('', '', '')
    """
    found = [_NUMERIC_DATE.fullmatch(x.strip()) if isinstance(x, str) else None for x in examples]
    month_at = 2 if way == "day-first" else 1  # the part read as the month, over 12 in a date written the other way
    if not found or not all(m is not None and int(m.group(month_at)) > 12 for m in found):
        return ""
    other = DATE_ORDERS[way]
    return f"; written {other}? ({str(examples[0]).strip()}; the reference: {way.replace('-', ' ')})"


def _commas_mostly(sample: NumericalSample | CategoricalSample, examples: Sequence[object]) -> bool:
    """Whether most of a numerical column's cells are not numbers and each example of them is a
    number written with a decimal comma (:func:`decimal_commas`)."""
    return sample.unparsable >= sample.count and decimal_commas(examples)


def decimal_commas(examples: Sequence[object]) -> bool:
    """Whether every example of a numerical column's cells that are not numbers is a number written
    with a decimal comma (``'75,18'``, ``'1.234,5'``): the batch is then likely written so.

    >>> decimal_commas(["75,18", "1.234,5"]), decimal_commas(["75,18", "n/a"]), decimal_commas([])
    (True, False, False)
    """
    return bool(examples) and all(
        isinstance(x, str) and (DECIMAL_COMMA.match(x.strip()) or GROUPED_DECIMAL_COMMA.match(x.strip()))
        for x in examples
    )


MISSING_IN_CSV = frozenset(NULL_VALUES)
"""Cells a CSV file holds as missing values, which a Parquet file holds as text."""


def file_format(info: DatasetInfo | None) -> str | None:
    """ "csv" or "parquet", as a dataset's file name says; None when it does not (or no file).

    >>> file_format(DatasetInfo("s3://bank/batch.PARQUET", 1)), file_format(DatasetInfo("b.csv", 1))
    ('parquet', 'csv')
    """
    if info is None or not info.path:
        return None
    try:
        return table_format(Path(info.path.rstrip("/")))
    except InputDataError:  # a folder of parts, a cached profile...
        return None


def _missing_in_csv(tally: ColumnTally, formats: tuple[str | None, str | None]) -> tuple[int, str] | None:
    """A category column compared across a CSV file and a Parquet one, the Parquet side holding
    cells a CSV reads as missing (``""``, ``NA``, ``null``...) as text: the same data drifts
    between the two formats. The Parquet batch's count of such cells (a CSV batch's missing
    values, when the reference is the Parquet file) and a message; None otherwise."""
    reference_format, batch_format = formats
    if reference_format is None or batch_format is None or reference_format == batch_format:
        return None
    sample, reference = tally.sample, tally.profile.sample
    if not (isinstance(sample, CategoricalSample) and isinstance(reference, CategoricalSample)):
        return None
    side = sample if batch_format == "parquet" else reference
    found = [
        (x, int(n)) for x, n in zip(side.labels, side.counts, strict=True) if isinstance(x, str) and x in MISSING_IN_CSV
    ]
    if not found:
        return None
    count = sum(n for _, n in found)
    shown = ", ".join(repr(label) for label, _ in found)
    remedy = "the same data drifts between the two formats: write both tables in one format, or these cells as nulls"
    if batch_format == "parquet":
        return count, (
            f"{count:,} cells are {shown} as text in this Parquet batch, which a CSV file such as the "
            f"reference reads as missing values; {remedy}"
        )
    return sample.missing, (
        f"the reference, a Parquet file, holds {shown} as text in {count:,} cells, which a CSV file such "
        f"as this batch reads as missing values ({sample.missing} here); {remedy}"
    )


def labels_to_come(column: ColumnTally, rows: int) -> bool:
    """Whether ``column`` is the target and holds no value in any of the batch's ``rows``: a label
    column not filled yet, whose outcomes come later - no quality failure, no label compared."""
    sample = column.sample
    return column.profile.plan.role == "target" and sample is not None and rows > 0 and sample.missing == rows


def _column_checks(
    tally: ColumnTally, settings: MonitorSettings, rows: int, formats: tuple[str | None, str | None] = (None, None)
) -> list[QualityCheck]:
    """The failed or suspicious checks of one monitored column (``formats``: the reference's and
    the batch's file formats, when known)."""
    name = tally.profile.plan.name
    sample = tally.sample
    reference = tally.profile.sample
    checks: list[QualityCheck] = []

    def add(check: str, severity: str, count: int, message: str) -> None:
        checks.append(QualityCheck(check, severity, message, name, count, _share(count, rows)))

    assert sample is not None
    if labels_to_come(tally, rows):
        return []  # the labels come later (said with the target)
    unusable = sample.missing + sample.unparsable + getattr(sample, "infinite", 0)
    before = 0.0
    if reference is not None and reference.rows:
        before = (reference.missing + reference.unparsable + getattr(reference, "infinite", 0)) / reference.rows
    commas = tally.profile.plan.column_type == "numerical" and _commas_mostly(sample, tally.unparsable_examples)
    advice = decimal_comma_advice(settings, formats[1]) if commas else ""
    if tally.profile.plan.column_type == "datetime" and settings.date_format(name) in DATE_ORDERS:
        advice = _other_order(settings.date_format(name) or "", tally.unparsable_examples)
    if rows and unusable / rows >= MOSTLY_UNUSABLE and unusable / rows - before >= MOSTLY_UNUSABLE / 2:
        # one column gone bad must fail the quality check, however many healthy columns average it out
        add(
            "mostly_unusable",
            "error",
            unusable,
            f"{unusable / rows:.0%} of the values are missing or unusable (reference: {before:.0%}){advice}",
        )
    if sample.missing:
        usual = expected_missing(tally, rows)
        share = reference.missing / reference.rows if reference is not None and reference.rows else 0.0
        add(
            "missing",
            "error" if sample.missing > usual + _noise(usual, share) else "warning",
            sample.missing,
            f"{sample.missing:,} missing {plural(sample.missing, 'value', 'values')}"
            + (f" (reference: {share:.0%} missing)" if usual else ""),
        )
    if sample.unparsable:
        one = sample.unparsable == 1
        kind = tally.profile.plan.column_type
        expected = (
            ("a number" if one else "numbers")
            if kind == "numerical"
            else (("a date" if one else "dates") if kind == "datetime" else _type_words(tally.profile.dtype, one))
        )
        shown = ", ".join(repr(label_text(cell)) for cell in tally.unparsable_examples)
        add(
            "unparsable",
            "error",
            sample.unparsable,
            f"{sample.unparsable:,} {plural(sample.unparsable, 'value is', 'values are')} not {expected}"
            + (f", e.g. {shown}" if shown else "")
            + advice,
        )
    if isinstance(sample, NumericalSample):
        if sample.infinite:
            add(
                "infinite",
                "error",
                sample.infinite,
                f"{sample.infinite:,} infinite {plural(sample.infinite, 'value', 'values')}",
            )
        if tally.out_of_domain:
            low, high = settings.domains[name]
            add(
                "out_of_domain",
                "error",
                tally.out_of_domain,
                f"{tally.out_of_domain:,} {plural(tally.out_of_domain, 'value', 'values')} outside the allowed "
                f"range [{low:g}, {high:g}]",
            )
        column_type = tally.profile.plan.column_type
        scale = _thousandfold(reference, sample, column_type) if isinstance(reference, NumericalSample) else ""
        if scale:  # (its values are out of the reference's range: this says why)
            add("scale", "warning", sample.count, scale)
        elif isinstance(reference, NumericalSample) and reference.count and tally.out_of_range:
            n = tally.out_of_range
            bounds = [_as_text(v, tally.profile.plan.column_type) for v in (reference.low, reference.high)]
            # every date of the batch after the reference's last: the date of the record (a snapshot or
            # event date), which each new batch moves past - it drifts every night, whatever the customers do
            later = column_type == "datetime" and n == sample.count and sample.count and sample.low > reference.high
            add(
                "out_of_reference_range",
                "warning",
                n,
                f"{n:,} {plural(n, 'value', 'values')} outside the reference range [{bounds[0]}, {bounds[1]}]"
                + (
                    ": every date after the reference's last - the date of the record? (columns.ignored leaves it "
                    "out; drift.time_column cuts the batch by it)"
                    if later
                    else ""
                ),
            )
    if isinstance(sample, CategoricalSample) and isinstance(reference, CategoricalSample):
        known = set(reference.labels)
        unseen = [i for i, label in enumerate(sample.labels) if label not in known]
        if tally.profile.plan.role == "target" and unseen:  # as the target's rate reads them
            respelled, other, _ = batch_labels(reference, sample)
            unseen = [i for i in unseen if i not in respelled and i != other]
        if unseen:
            n = int(sample.counts[unseen].sum())
            examples = ", ".join(repr(label_text(sample.labels[i])) for i in unseen[:EXAMPLES])
            more = f" and {len(unseen) - EXAMPLES:,} more" if len(unseen) > EXAMPLES else ""
            kind = plural(len(unseen), "category", "categories")
            allowed = ", ".join(repr(label_text(label)) for label in reference.labels[:EXAMPLES])
            respelled = _written_otherwise([sample.labels[i] for i in unseen], reference.labels)
            if tally.profile.plan.role == "target" or len(reference.labels) == 2:
                # a label or a yes/no column has a closed set of values: anything else is an error
                what = "the target" if tally.profile.plan.role == "target" else "this two-valued column"
                add(
                    "implausible_value",
                    "error",
                    n,
                    f"{n:,} {plural(n, 'value', 'values')} outside the reference's values of {what} ({allowed}): "
                    f"{examples}{more}",
                )
            elif n == sample.count:
                add(
                    "all_unseen",
                    "error",
                    n,
                    f"every value ({n:,}) is a category the reference never had, e.g. {examples}{more}{respelled}",
                )
            else:
                add(
                    "new_category",
                    "warning",
                    n,
                    f"{n:,} {plural(n, 'value', 'values')} in {len(unseen):,} {kind} the reference never had: "
                    f"{examples}{more}{respelled}",
                )
    across = _missing_in_csv(tally, formats)
    if across is not None:
        add("missing_in_csv", "warning", *across)
    if _distinct(sample) == 1 and rows > 1:
        add("constant", "warning", 0, "only one value in the current data")
    if _distinct(reference) == 1:
        add("constant_in_reference", "warning", 0, "only one value in the reference")
    return checks


THOUSANDFOLD = (300.0, 3000.0)
"""A batch whose median is this many times the reference's (or that fraction of it) is read at
another scale: a decimal mark read as a thousands separator (``6,486`` as 6486, ``10.669`` as
10669), or another unit."""


def _thousandfold(reference: NumericalSample, sample: NumericalSample, column_type: str) -> str:
    """What a quality check says of a column whose values are about a thousand times the
    reference's (or a thousandth): the drift found is likely a misread, not a change.

    >>> import numpy as np
    >>> ref = NumericalSample(np.array([4.2, 6.5, 9.1]), 3, 0, 0)
    >>> _thousandfold(ref, NumericalSample(np.array([4200.0, 6486.0, 9100.0]), 3, 0, 0), "numerical")[:52]
    "values about 998 times the reference's (median 6,486"
    >>> _thousandfold(ref, NumericalSample(np.array([4.0, 7.0, 9.0]), 3, 0, 0), "numerical")
    ''
    """
    if column_type != "numerical" or not reference.count or not sample.count:
        return ""
    before = sorted_quantiles(reference.values, reference.weights, [0.5])[0]
    after = sorted_quantiles(sample.values, sample.weights, [0.5])[0]
    if not before or not after or (before > 0) != (after > 0):
        return ""
    ratio = after / before
    low, high = THOUSANDFOLD
    if not (low <= ratio <= high or low <= 1 / ratio <= high):
        return ""
    times = f"about {ratio:,.0f} times" if ratio > 1 else f"about 1/{1 / ratio:,.0f} of"
    return f"values {times} the reference's (median {after:,.4g}, {before:,.4g}): a decimal mark read as thousands?"


def _written_otherwise(new: Sequence[object], known: Sequence[object]) -> str:
    """What a message adds when new categories are the reference's own written in another case
    or spacing (``PREPAID``, ``Prepaid ``): the same value, most likely, that drifts as a new one.

    >>> _written_otherwise(["PREPAID", "Gold"], ["Prepaid", "Basic"])
    "; 'PREPAID' is the reference's 'Prepaid' written otherwise"
    >>> _written_otherwise(["Gold"], ["Prepaid"])
    ''
    """

    def folded(value: object) -> str | None:
        return " ".join(value.split()).casefold() if isinstance(value, str) else None

    spelled = {folded(label): label for label in known if folded(label)}
    pairs = [(label, spelled[key]) for label in new if (key := folded(label)) in spelled]
    if not pairs:
        return ""
    shown = ", ".join(f"{label_text(a)!r} is the reference's {label_text(b)!r}" for a, b in pairs[:EXAMPLES])
    return f"; {shown} written otherwise"


def _type_words(dtype: str, one: bool = False) -> str:
    """The values a category column of the reference's type ``dtype`` holds, for a message
    (``one``: what one value is not).

    >>> _type_words("Boolean"), _type_words("Int64"), _type_words("Int64", one=True), _type_words("Float32")
    ('true/false', 'whole numbers', 'a whole number', 'of type Float32')
    """
    if dtype == "Boolean":
        return "true/false"
    if dtype.startswith(("Int", "UInt")):
        return "a whole number" if one else "whole numbers"
    return f"of type {dtype}"


def _as_text(value: float, column_type: str) -> str:
    """A bound for a message: dates (days since 1970) as ISO dates.

    >>> _as_text(0.0, "datetime"), _as_text(1234.5678, "numerical")
    ('1970-01-01', '1234.57')
    """
    if column_type == "datetime":
        return (date(1970, 1, 1) + timedelta(days=int(value))).isoformat()
    return f"{value:.6g}"


def _distinct(sample: NumericalSample | CategoricalSample | None) -> int:
    if sample is None:
        return 0
    if isinstance(sample, NumericalSample):
        if sample.count == 0:
            return 0
        return 1 if sample.values[0] == sample.values[-1] else 2
    return len(sample.labels)


def _missing_ids(n: int, text: dict[str, int]) -> str:
    """What a ``missing_ids`` check says: ``n`` rows without an identifier, and those of them
    written as text that stands for a missing value (``text``: cells by text, ``''``, ``NA``...).

    >>> _missing_ids(1200, {"NA": 1, "": 9}).split(", text")[0]
    "1,200 rows without an identifier (10 of them written as '', 'NA'"
    >>> _missing_ids(1, {" NA ": 1}).split(", text")[0]
    "1 row without an identifier (written as ' NA '"
    """
    written = sum(text.values())
    shown = ", ".join(repr(value) for value in sorted(text, key=lambda v: (-text[v], v))[:EXAMPLES])
    more = f" and {len(text) - EXAMPLES:,} more" if len(text) > EXAMPLES else ""
    how = ""
    if written:
        which = "" if written == n else f"{written:,} of them "
        how = f" ({which}written as {shown}{more}, text that stands for a missing value)"
    return f"{n:,} {plural(n, 'row', 'rows')} without an identifier{how}, not checked for repeats"


def expected_missing(tally: ColumnTally, rows: int) -> int:
    """How many of a batch's ``rows`` the column's reference share of missing values predicts
    missing: a column that is mostly empty by nature (a comment, a second phone number) is as
    empty in a good batch. Those cells are not failures of the batch; only more are."""
    reference = tally.profile.sample
    if reference is None or not reference.rows or not reference.missing:
        return 0
    return int(rows * reference.missing / reference.rows)


def _noise(expected: int, share: float) -> float:
    """Three standard deviations of a count of missing values around ``expected`` (a binomial):
    a batch is not worse for a few more empty cells than its reference's share predicts."""
    return 3.0 * (expected * (1.0 - share)) ** 0.5


def data_quality(
    tally: BatchTally, settings: MonitorSettings, formats: tuple[str | None, str | None] = (None, None)
) -> DataQuality:
    """Run every check on the current batch and compute the quality score (``formats``: the
    reference's and the batch's file formats, :func:`file_format`, when known)."""
    rows = tally.rows
    checks: list[QualityCheck] = [
        QualityCheck("extra_column", "warning", "column not in the reference; not monitored", name)
        for name in tally.extra_columns
    ]
    if rows < FEW_ROWS:
        checks.append(
            QualityCheck(
                "few_rows",
                "warning",
                f"only {rows} row{'s' if rows != 1 else ''}: drift tests on so few values are unreliable",
                None,
                rows,
                1.0,
            )
        )
    if tally.empty_rows:
        n = tally.empty_rows
        checks.append(
            QualityCheck(
                "empty_rows",
                "warning",
                f"{n:,} empty {plural(n, 'row', 'rows')} (no value in any column) left out of every check "
                "and test: blank lines in the export?",
                None,
                n,
                _share(n, rows + n),
            )
        )
    n_duplicates = tally.duplicated_rows
    if n_duplicates:
        about = "about " if tally.duplicated_rows_estimated else ""
        how = " (estimated from a sample of identifiers)" if tally.duplicated_rows_estimated else ""
        checks.append(
            QualityCheck(
                "duplicated_rows",
                "error",
                f"{about}{n_duplicates:,} {plural(n_duplicates, 'row repeats', 'rows repeat')} an earlier row{how}",
                None,
                n_duplicates,
                _share(n_duplicates, rows),
            )
        )

    def warn(check: str, column: str, count: int, message: str) -> None:
        if count:
            checks.append(QualityCheck(check, "warning", message, column, count, _share(count, rows)))

    for name, n in tally.duplicated_ids.items():
        warn(
            "duplicated_ids",
            name,
            n,
            f"about {n:,} repeated identifiers (estimated from a sample of identifiers)"
            if tally.duplicated_rows_estimated
            else f"{n:,} repeated {plural(n, 'identifier', 'identifiers')}",
        )
    for name, n in tally.missing_ids.items():
        warn("missing_ids", name, n, _missing_ids(n, tally.missing_id_text.get(name, {})))
    for name, n in tally.filled.items():
        warn(
            "empty_in_reference",
            name,
            n,
            f"{n:,} {plural(n, 'value', 'values')} in this batch, none in the reference: not tested "
            "(a reference that holds this column's values is needed to test it)",
        )
    for column in tally.columns.values():
        checks.extend(_column_checks(column, settings, rows, formats))
    n_columns = len(tally.columns)
    # values outside a closed set (the target's labels, a two-valued column) and columns whose
    # every value is new are counted per column: such a cell that is also in a repeated row is
    # counted twice, so the total is capped at the number of cells
    categorical_errors = sum(c.count for c in checks if c.check in ("implausible_value", "all_unseen"))
    failed = tally.failed_cells + n_duplicates * n_columns - tally.duplicated_row_failures + categorical_errors
    # the empty cells each column's reference predicts are its nature, not failures (a missing
    # cell of a repeated row may so be taken off once too often: the score is then a little high)
    usual = {name: min(c.sample.missing, expected_missing(c, rows)) for name, c in tally.columns.items() if c.sample}
    usual |= {name: rows for name, c in tally.columns.items() if labels_to_come(c, rows)}
    cells = rows * n_columns
    failed = max(0, min(failed - sum(usual.values()), cells))

    def failing(check: QualityCheck) -> int:
        """The cells a check fails (a repeated row all of its cells; missing values those beyond
        the reference's share)."""
        if check.check == "duplicated_rows":
            return check.count * n_columns
        if check.check == "missing":
            return check.count - usual.get(check.column or "", 0)
        return check.count

    score = 1.0 - failed / cells if cells else 1.0
    return DataQuality(
        score=score,
        threshold=settings.quality_threshold,
        passed=score >= settings.quality_threshold and not any(c.check == "mostly_unusable" for c in checks),
        cells=cells,
        failed_cells=failed,
        duplicated_rows=n_duplicates,
        duplicated_ids=sum(tally.duplicated_ids.values()),
        duplicated_rows_estimated=tally.duplicated_rows_estimated,
        # the worst first: by the cells each check fails (a repeated row fails every cell of it)
        checks=sorted(
            checks,
            key=lambda c: (
                c.severity != "error",
                -failing(c),
                c.column or "",
                c.check,
            ),
        ),
    )
