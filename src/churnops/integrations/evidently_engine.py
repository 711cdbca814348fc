"""``--engine evidently``: Evidently 0.7.23's ``DataDriftPreset`` and ``DataSummaryPreset``.

Evidently decides the test, score and verdict of every feature column it can test; churnops keeps
its own summaries, data quality and target drift (Evidently's presets have no two-proportion
target test), its verdict on columns with no usable value (Evidently refuses them), and maps
everything into the same metrics contract. Evidently's own HTML page is saved beside ours only
when asked (``monitor.evidently_html``), its embedded data escaped (:func:`escaped_evidently_page`).
This module is the only place that imports Evidently.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from churnops.data.io import atomic_write_text
from churnops.errors import IntegrationError, MissingDependencyError
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

    import pandas as pd

    def convert(frame: pl.DataFrame, like: dict[str, pl.DataType]) -> Any:
        data = {}
        for name in numerical + categorical:
            data[name] = coerce(frame[name], kinds[name], like.get(name)).series
        converted = pl.DataFrame(data).to_pandas()
        for name in categorical:
            series = data[name]
            if series.dtype.is_integer() and series.null_count():
                # pandas makes integers with a missing value floats, and Evidently refuses float
                # labels (and pandas' own missing integer): Python integers and None
                converted[name] = pd.Series(series.to_list(), dtype=object, index=converted.index)
        return converted

    reference_pd = convert(reference, {})
    # the batch's categories in the reference's type, as the native engine has them: codes read
    # as numbers from a CSV reference meet the same codes held as text in a Parquet batch
    like = {name: reference[name].dtype for name in categorical}
    like = {name: dtype for name, dtype in like.items() if dtype in (pl.String, pl.Int64, pl.Boolean)}
    return reference_pd, convert(current, like), numerical, categorical


def run_evidently(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    settings: MonitorSettings,
    reference_info: DatasetInfo,
    current_info: DatasetInfo,
    html_path: Path,
) -> MonitoringResult:
    """Run Evidently on the feature columns and map its verdicts into a :class:`MonitoringResult`.

    Evidently's own page is written to ``html_path`` only with ``settings.evidently_html`` (and
    a page left there by an earlier run is removed otherwise).

    Raises
    ------
    IntegrationError
        When Evidently's page does not have the structure whose data can be escaped.
    """
    _import_evidently()
    import evidently

    native = compare(build_profile(reference, settings), current, settings, reference_info, current_info)
    # Evidently refuses a column with no usable value ("An empty column ... was provided"); the
    # native engine already counts it as drifted, with a note, and that verdict is kept.
    testable = [c for c in native.columns if c.test != "none"]
    if not settings.evidently_html and (html_path.is_file() or html_path.is_symlink()):
        html_path.unlink()  # a page of an earlier run would pass for this run's
    evidently_facts: dict[str, Any] = {"version": evidently.__version__, "html": None, "drifted_columns": None}
    if not testable:
        logger.warning("no column has usable values in both datasets: Evidently was not run")
        return replace(native, engine="evidently", settings={**native.settings, "evidently": evidently_facts})
    document, page = _run_presets(reference, current, settings, testable, want_page=settings.evidently_html)
    if page is not None:
        atomic_write_text(html_path, escaped_evidently_page(page))
        evidently_facts["html"] = str(html_path)
    scores: dict[str, tuple[str, float, float | None]] = {}
    for metric in document["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = (config["method"], float(metric["value"]), config.get("threshold"))
        elif config.get("type", "").endswith("DriftedColumnsCount"):
            evidently_facts["drifted_columns"] = metric["value"]
    verdicts = {
        test["metric_config"]["params"]["column"]: test["status"] == "FAIL"
        for test in document.get("tests", [])
        if test["metric_config"]["params"].get("type", "").endswith("ValueDrift")
    }
    columns = [
        _evidently_column(c, scores.get(c.name), verdicts.get(c.name)) if c.test != "none" else c
        for c in native.columns
    ]
    return replace(
        native,
        engine="evidently",
        columns=columns,
        dataset_drift=dataset_drift(columns, settings),
        settings={**native.settings, "evidently": evidently_facts},
    )


def _run_presets(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    settings: MonitorSettings,
    columns: list[ColumnDrift],
    want_page: bool,
) -> tuple[dict[str, Any], str | None]:
    """Evidently's snapshot of the columns as a dict, and its HTML page when wanted."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    ref_pd, cur_pd, numerical, categorical = _frames_for_evidently(reference, current, columns)
    if settings.binning != "evidently":
        logger.warning("the Evidently engine always uses Evidently's binning; drift.binning is ignored")
    if settings.distance_threshold != 0.1:
        logger.warning("the Evidently engine uses Evidently's default thresholds; thresholds.column_drift is ignored")
    tested = set(numerical + categorical)
    methods = {name: evidently_name(test) for name, test in settings.per_column_method.items() if name in tested}
    thresholds = {name: value for name, value in settings.per_column_threshold.items() if name in tested}
    preset = DataDriftPreset(
        drift_share=settings.evidently_drift_share,
        method=evidently_name(settings.method) if settings.method else None,
        num_method=evidently_name(settings.num_method) if settings.num_method else None,
        cat_method=evidently_name(settings.cat_method) if settings.cat_method else None,
        per_column_method=methods or None,
        threshold=settings.threshold,
        num_threshold=settings.num_threshold,
        cat_threshold=settings.cat_threshold,
        per_column_threshold=thresholds or None,
    )
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    report = Report([preset, DataSummaryPreset()], include_tests=True)
    import warnings

    with warnings.catch_warnings():
        # Evidently's own deprecation notices about pandas (not the user's to act on)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"evidently(\.|$)")
        snapshot = report.run(
            current_data=Dataset.from_pandas(cur_pd, data_definition=definition),
            reference_data=Dataset.from_pandas(ref_pd, data_definition=definition),
        )
        return snapshot.dict(), snapshot.get_html_str(as_iframe=False) if want_page else None


_DATA_LINE = re.compile(r"(?P<lead>\s*var (?P<name>(?:additional_graphs_)?metric_[0-9a-f]{32}) = )(?P<data>.*);")
"""A line of the data block of Evidently 0.7's page: ``var <id> = <json>;``."""
_JSON_MARKUP = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def escaped_evidently_page(page: str) -> str:
    """Evidently's page with its embedded data escaped, so that no data can end the script or
    start markup.

    Evidently 0.7 embeds the report as two JSON lines in a script element, ``var <id> = <json>;``
    and ``var additional_graphs_<id> = <json>;``, without escaping ``</`` - a column named
    ``</script><script>...`` runs as script. JSON text outside its strings never holds ``<``,
    ``>`` or ``&``, so replacing them on those two lines by ``\\u003c``, ``\\u003e`` and ``\\u0026``
    (the same characters to JavaScript) escapes exactly the data. The structure is checked first.

    Raises
    ------
    IntegrationError
        When the page does not hold exactly that data block (another Evidently version?):
        better no page than one that runs what the data says.

    >>> page = '<html><head>\\n<script>\\n    var metric_%s = {"n": "</script>"};\\n' % ("0" * 32)
    >>> page += '    var additional_graphs_metric_%s = {};\\n</script>\\n</head></html>' % ("0" * 32)
    >>> escaped_evidently_page(page).splitlines()[2]
    '    var metric_00000000000000000000000000000000 = {"n": "\\\\u003c/script\\\\u003e"};'
    """
    lines = page.split("\n")
    blocks = [
        i
        for i in range(1, len(lines) - 2)
        if lines[i - 1].strip() == "<script>"
        and lines[i + 2].strip() == "</script>"
        and (first := _DATA_LINE.fullmatch(lines[i])) is not None
        and (second := _DATA_LINE.fullmatch(lines[i + 1])) is not None
        and second["name"] == "additional_graphs_" + first["name"]
    ]
    if len(blocks) != 1:
        raise IntegrationError(
            f"Evidently's HTML page does not hold the one data block churnops knows how to escape "
            f"({len(blocks)} found); it was not written"
        )
    for i in (blocks[0], blocks[0] + 1):
        line = _DATA_LINE.fullmatch(lines[i])
        assert line is not None
        try:
            data = json.loads(line["data"])
        except ValueError:
            raise IntegrationError("Evidently's HTML page embeds data that is not JSON; it was not written") from None
        escaped = line["data"].translate(_JSON_MARKUP)
        if json.loads(escaped) != data:  # the escapes must stand for the same characters
            raise IntegrationError("Evidently's HTML page could not be escaped; it was not written")
        lines[i] = f"{line['lead']}{escaped};"
    return "\n".join(lines)


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
