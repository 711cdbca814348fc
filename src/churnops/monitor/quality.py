"""Data quality of the current batch.

The quality score is the share of current cells, over the monitored columns, that pass every
*error* check: present, parseable as the column's type, finite, inside the configured domain,
and not in a row that repeats an earlier row. *Warnings* - values outside the reference's
range, categories the reference never had, constant columns, repeated identifiers, columns the
reference does not have - are reported but do not lower the score. Below
``thresholds.data_quality`` (the seed's 0.95) the batch gets a quality warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from churnops.monitor.prepare import CategoricalSample, NumericalSample
from churnops.monitor.profile import ColumnProfile
from churnops.monitor.results import DataQuality, QualityCheck
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.summaries import label_text

EXAMPLES = 5


@dataclass(frozen=True)
class CurrentColumn:
    """A monitored column of the current batch after coercion to the reference's type."""

    profile: ColumnProfile
    series: pl.Series
    """Float64 for numerical and datetime columns, the reference's type for categories."""
    unparsable: int
    sample: NumericalSample | CategoricalSample


def _share(count: int, rows: int) -> float:
    return count / rows if rows else 0.0


def _column_checks(column: CurrentColumn, settings: MonitorSettings, rows: int) -> tuple[list[QualityCheck], pl.Series]:
    """Checks of one column and the mask of its failing cells."""
    name = column.profile.plan.name
    series = column.series
    checks: list[QualityCheck] = []
    bad = series.is_null()
    missing = int(bad.sum()) - column.unparsable
    if missing:
        checks.append(
            QualityCheck("missing", "error", f"{missing} missing values", name, missing, _share(missing, rows))
        )
    if column.unparsable:
        n = column.unparsable
        expected = "a number" if series.dtype == pl.Float64 else f"{column.profile.dtype}"
        checks.append(QualityCheck("unparsable", "error", f"{n} values are not {expected}", name, n, _share(n, rows)))
    sample = column.sample
    reference = column.profile.sample
    if isinstance(sample, NumericalSample) and isinstance(reference, NumericalSample):
        finite = series.is_finite().fill_null(False)
        nan = series.is_nan().fill_null(False)
        if int(nan.sum()):
            n = int(nan.sum())
            checks.append(QualityCheck("missing", "error", f"{n} NaN values", name, n, _share(n, rows)))
        infinite = series.is_infinite().fill_null(False)
        if int(infinite.sum()):
            n = int(infinite.sum())
            checks.append(QualityCheck("infinite", "error", f"{n} infinite values", name, n, _share(n, rows)))
        bad = bad | nan | infinite
        if name in settings.domains:
            low, high = settings.domains[name]
            outside = finite & ((series < low) | (series > high)).fill_null(False)
            n = int(outside.sum())
            if n:
                checks.append(
                    QualityCheck(
                        "out_of_domain",
                        "error",
                        f"{n} values outside the allowed range [{low:g}, {high:g}]",
                        name,
                        n,
                        _share(n, rows),
                    )
                )
                bad = bad | outside
        if reference.values.size and sample.values.size:
            low, high = float(reference.values[0]), float(reference.values[-1])
            values = sample.values
            n = int((values < low).sum() + (values > high).sum())
            if n:
                checks.append(
                    QualityCheck(
                        "out_of_reference_range",
                        "warning",
                        f"{n} values outside the reference range [{low:.6g}, {high:.6g}]",
                        name,
                        n,
                        _share(n, rows),
                    )
                )
    if isinstance(sample, CategoricalSample) and isinstance(reference, CategoricalSample):
        known = set(reference.labels)
        unseen = [i for i, label in enumerate(sample.labels) if label not in known]
        if unseen:
            counts = sample.counts
            n = int(counts[unseen].sum())
            examples = ", ".join(repr(label_text(sample.labels[i])) for i in unseen[:EXAMPLES])
            more = f" and {len(unseen) - EXAMPLES} more" if len(unseen) > EXAMPLES else ""
            checks.append(
                QualityCheck(
                    "new_category",
                    "warning",
                    f"{n} values in {len(unseen)} "
                    f"{'category' if len(unseen) == 1 else 'categories'} the reference never had: {examples}{more}",
                    name,
                    n,
                    _share(n, rows),
                )
            )
    distinct_current = _distinct(sample)
    if distinct_current == 1 and rows > 1:
        checks.append(QualityCheck("constant", "warning", "only one value in the current data", name))
    if reference is not None and _distinct(reference) == 1:
        checks.append(QualityCheck("constant_in_reference", "warning", "only one value in the reference", name))
    return checks, bad


def _distinct(sample: NumericalSample | CategoricalSample | None) -> int:
    if sample is None:
        return 0
    if isinstance(sample, NumericalSample):
        values = sample.values
        return 0 if values.size == 0 else int(values[0] != values[-1]) + 1
    return len(sample.labels)


def data_quality(
    current: pl.DataFrame,
    columns: list[CurrentColumn],
    extra_columns: list[str],
    settings: MonitorSettings,
) -> DataQuality:
    """Run every check on the current batch and compute the quality score."""
    rows = current.height
    checks: list[QualityCheck] = []
    for name in extra_columns:
        checks.append(QualityCheck("extra_column", "warning", "column not in the reference; not monitored", name))
    duplicate_rows = ~current.select(pl.struct(pl.all()).is_first_distinct()).to_series()
    n_duplicates = int(duplicate_rows.sum())
    if n_duplicates:
        checks.append(
            QualityCheck(
                "duplicated_rows",
                "error",
                f"{n_duplicates} rows repeat an earlier row",
                None,
                n_duplicates,
                _share(n_duplicates, rows),
            )
        )
    duplicated_ids = 0
    for id_column in settings.id_columns:
        if id_column in current.columns:
            ids = current[id_column].drop_nulls()
            n = ids.len() - ids.n_unique()
            duplicated_ids += n
            if n:
                checks.append(
                    QualityCheck(
                        "duplicated_ids",
                        "warning",
                        f"{n} repeated identifiers",
                        id_column,
                        n,
                        _share(n, rows),
                    )
                )
    failed = 0
    for column in columns:
        column_checks, bad = _column_checks(column, settings, rows)
        checks.extend(column_checks)
        if n_duplicates:
            bad = bad | duplicate_rows
        failed += int(bad.sum())
    cells = rows * len(columns)
    score = 1.0 - failed / cells if cells else 1.0
    return DataQuality(
        score=score,
        threshold=settings.quality_threshold,
        passed=score >= settings.quality_threshold,
        cells=cells,
        failed_cells=failed,
        duplicated_rows=n_duplicates,
        duplicated_ids=duplicated_ids,
        checks=sorted(checks, key=_check_order),
    )


def _check_order(check: QualityCheck) -> tuple[Any, ...]:
    return (check.severity != "error", -check.count, check.column or "", check.check)
