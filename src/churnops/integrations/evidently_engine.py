"""``--engine evidently``: Evidently 0.7.23's ``DataDriftPreset`` and ``DataSummaryPreset``.

Evidently decides every feature column's test, score and verdict; churnops keeps its own
summaries, data quality and target drift (Evidently's presets have no two-proportion target
test) and maps everything into the same metrics contract. Evidently's own HTML report is saved
beside ours. This module is the only place that imports Evidently.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from churnops.data.io import atomic_path
from churnops.errors import MissingDependencyError
from churnops.monitor.drift import dataset_drift
from churnops.monitor.engine import compare
from churnops.monitor.prepare import coerce
from churnops.monitor.profile import build_profile
from churnops.monitor.results import ColumnDrift, DatasetInfo, MonitoringResult
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.stattests import ALIASES, REGISTRY, get_stattest

logger = logging.getLogger(__name__)


def _import_evidently() -> Any:
    try:
        import evidently  # noqa: F401
    except ImportError:
        raise MissingDependencyError("evidently", "evidently") from None
    return evidently


def evidently_name(test: str) -> str:
    """Evidently's registry name of one of our tests.

    >>> evidently_name("mannwhitney"), evidently_name("psi")
    ('mannw', 'psi')
    """
    spec = get_stattest(test)
    return spec.evidently_name or spec.name


def _our_name(method: str) -> str:
    """Our test name from Evidently's method name or display name."""
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests

    for name, by_type in _registered_stat_tests.items():
        if method == name or any(method == t.display_name for t in by_type.values()):
            return ALIASES.get(name, name)
    return method


def _frames_for_evidently(
    reference: pl.DataFrame, current: pl.DataFrame, columns: list[ColumnDrift]
) -> tuple[Any, Any, list[str], list[str]]:
    """pandas frames of the tested feature columns, dates turned into day numbers as we do."""
    numerical = [c.name for c in columns if c.column_type in ("numerical", "datetime")]
    categorical = [c.name for c in columns if c.column_type == "categorical"]
    kinds = {c.name: c.column_type for c in columns}

    def convert(frame: pl.DataFrame) -> Any:
        data = {}
        for name in numerical + categorical:
            data[name] = coerce(frame[name], kinds[name]).series
        return pl.DataFrame(data).to_pandas()

    return convert(reference), convert(current), numerical, categorical


def run_evidently(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    settings: MonitorSettings,
    reference_info: DatasetInfo,
    current_info: DatasetInfo,
    html_path: Path,
) -> MonitoringResult:
    """Run Evidently on the feature columns and map its verdicts into a :class:`MonitoringResult`."""
    _import_evidently()
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    native = compare(build_profile(reference, settings), current, settings, reference_info, current_info)
    ref_pd, cur_pd, numerical, categorical = _frames_for_evidently(reference, current, native.columns)
    if settings.binning != "evidently":
        logger.warning("the Evidently engine always uses Evidently's binning; drift.binning is ignored")
    if settings.distance_threshold != 0.1:
        logger.warning("the Evidently engine uses Evidently's default thresholds; thresholds.column_drift is ignored")
    methods = {
        name: evidently_name(test)
        for name, test in settings.per_column_method.items()
        if name in numerical + categorical
    }
    preset = DataDriftPreset(
        drift_share=settings.evidently_drift_share,
        method=evidently_name(settings.method) if settings.method else None,
        num_method=evidently_name(settings.num_method) if settings.num_method else None,
        cat_method=evidently_name(settings.cat_method) if settings.cat_method else None,
        per_column_method=methods or None,
        threshold=settings.threshold,
        num_threshold=settings.num_threshold,
        cat_threshold=settings.cat_threshold,
        per_column_threshold=dict(settings.per_column_threshold) or None,
    )
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    report = Report([preset, DataSummaryPreset()], include_tests=True)
    snapshot = report.run(
        current_data=Dataset.from_pandas(cur_pd, data_definition=definition),
        reference_data=Dataset.from_pandas(ref_pd, data_definition=definition),
    )
    with atomic_path(html_path) as tmp:
        snapshot.save_html(str(tmp))
    document = snapshot.dict()
    scores: dict[str, tuple[str, float, float | None]] = {}
    drifted_count = None
    for metric in document["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = (config["method"], float(metric["value"]), config.get("threshold"))
        elif config.get("type", "").endswith("DriftedColumnsCount"):
            drifted_count = metric["value"]
    verdicts = {
        test["metric_config"]["params"]["column"]: test["status"] == "FAIL"
        for test in document.get("tests", [])
        if test["metric_config"]["params"].get("type", "").endswith("ValueDrift")
    }
    columns = [_evidently_column(c, scores.get(c.name), verdicts.get(c.name)) for c in native.columns]
    import evidently

    return replace(
        native,
        engine="evidently",
        columns=columns,
        dataset_drift=dataset_drift(columns, settings),
        settings={
            **native.settings,
            "evidently": {
                "version": evidently.__version__,
                "html": str(html_path),
                "drifted_columns": drifted_count,
            },
        },
    )


def _evidently_column(
    column: ColumnDrift, score: tuple[str, float, float | None] | None, drifted: bool | None
) -> ColumnDrift:
    if score is None or drifted is None:
        return replace(column, note="not evaluated by Evidently")
    method, value, threshold = score
    test = _our_name(method)
    spec = REGISTRY.get(test)
    kind = spec.kind if spec else "p_value"
    return replace(
        column,
        test=test,
        kind=kind,
        statistic=value if kind == "distance" else math.nan,
        p_value=value if kind == "p_value" else None,
        threshold=float(threshold) if threshold is not None else column.threshold,
        drift_detected=drifted,
        drift_score=value,
    )
