"""Scoring with the champion: ``churnops predict``, and the model part of ``churnops monitor``."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from churnops.config import Config
from churnops.data.files import linked_folder, refuse_foreign
from churnops.data.io import TableReader, atomic_path, sha256_file, table_format, write_frame
from churnops.errors import ChurnopsError, InputDataError
from churnops.escape import FORMULA_BLANKS, FORMULA_STARTS, csv_cell, one_line_short, plural
from churnops.integrations import mlflow_registry as registry
from churnops.integrations.model_artifact import ModelRefusedError
from churnops.monitor.columns import ColumnPlan
from churnops.monitor.drift import column_drift
from churnops.monitor.performance import classification_metrics, estimated_metrics
from churnops.monitor.prepare import NumericalSample
from churnops.monitor.results import ColumnDrift, MonitoringResult
from churnops.monitor.settings import settings_from_config
from churnops.pipeline.champion import ModelUnavailable, expected
from churnops.pipeline.progress import Progress, heartbeat

T = TypeVar("T")
logger = logging.getLogger(__name__)
PROBABILITY = "churn_probability"
PREDICTION = "churn_prediction"
FORMULA_START = (
    "^["
    + "".join(f"\\x{{{ord(blank):x}}}" for blank in FORMULA_BLANKS)
    + "]*["
    + "".join(f"\\x{{{ord(start):x}}}" for start in FORMULA_STARTS)
    + "]"
)
"""Cells starting like this are formulas to a spreadsheet (:func:`~churnops.escape.csv_cell`'s rule, for a
column); CSV outputs get a leading quote."""
NPY_HEADER_BYTES = 1 << 16
NOT_MEASURED = "not measured: the model was not checked"


def store_of(config: Config) -> registry.Store:
    uri = config.model_tracking_uri()
    artifacts = config.model.artifact_dir
    root: Path | str = artifacts if "://" in artifacts else config.resolve(artifacts)
    storage = config.storage
    return registry.Store(uri, root, config.model.experiment, storage.endpoint_url, storage.region)


def _reading(progress: Progress | None, what: str) -> Callable[[int, int], None] | None:
    """A table reader's ``progress(bytes_done, bytes_total)`` as a step of ``progress``."""
    if progress is None:
        return None
    return lambda done, total: progress(what, done, total)


MOSTLY_NOT_NUMBERS = 0.5
"""An input with more than this share of cells that are not numbers - or, for a categorical
input, of values the model never learned - is not scored (the model is then not checked); fewer
are scored as missing values (unknown categories), with a warning."""


def _unseen(column: Any, known: list[Any]) -> tuple[int, Any]:
    """Present cells of ``column`` (polars) holding none of the ``known`` categories, and one of
    them (the most frequent)."""
    import polars as pl

    # a missing value the model learned as a category of its own is no category a cell can miss:
    # present cells are compared with the others (with it, text matched nothing, and every cell was new)
    known = [value for value in known if value is not None and value == value]
    if all(isinstance(value, str) for value in known):
        values = column.cast(pl.String) if column.dtype != pl.String else column
    elif column.dtype.is_numeric() or column.dtype == pl.Boolean:
        values, known = column.cast(pl.Float64), [float(value) for value in known]
    else:  # text where the model learned numbers: nothing matches
        values, known = column, []
    present = values.drop_nulls()
    unseen = present.filter(~present.is_in(known)) if known else present
    if unseen.is_empty():
        return 0, None
    return unseen.len(), unseen.mode().sort()[0]


def model_dates(frame: Any, columns: list[str], formats: dict[str, str]) -> tuple[Any, dict[str, tuple[int, Any]]]:
    """``frame`` (polars) with the model's date inputs ``columns`` read as monitoring reads dates -
    ``formats`` per column (a family or a strftime format), else ISO 8601 or the way that reads
    most of the column's values, never guessed from its first row - as dates; and the cells
    present but unreadable of each column, with one of them. Raises
    :class:`~churnops.monitor.prepare.AmbiguousDates` for dates of no format that read both as
    day/month and as month/day (:func:`whole_columns` decides from the whole file)."""
    import polars as pl

    from churnops.monitor.prepare import coerce_datetime

    read, unreadable = [], {}
    for name in columns:
        if name not in frame.columns or frame.schema[name] == pl.Date:
            continue
        series = frame[name]
        coerced = coerce_datetime(series, formats.get(name), undecided="error")
        days = coerced.series.cast(pl.Int32).cast(pl.Date).alias(name)
        if coerced.unparsable:
            text = series.cast(pl.String)
            bad = text.filter(days.is_null() & text.is_not_null() & (text.str.strip_chars() != ""))
            unreadable[name] = (coerced.unparsable, bad[0] if bad.len() else None)
        read.append(days)
    return (frame.with_columns(read) if read else frame), unreadable


def whole_columns(config: Config, path: Path, formats: dict[str, str], score: Callable[[dict[str, str]], T]) -> T:
    """``score(formats)``, with the format of a date column whose piece read both as day/month and
    as month/day decided from the whole file at ``path`` and added (as monitoring does); the
    :class:`~churnops.monitor.prepare.AmbiguousDates` error when the whole column still does."""
    from churnops.monitor.prepare import AmbiguousDates
    from churnops.pipeline.inference import batch_date_format

    formats = dict(formats)
    while True:
        try:
            return score(formats)
        except AmbiguousDates as exc:
            way = None if exc.column in formats else batch_date_format(config, path, exc.column)
            if way is None:
                raise
            logger.info("the model reads the dates of %s as %s (decided from the whole column)", exc.column, way)
            formats[exc.column] = way


def training_date_formats(config: Config, frame: Any, columns: list[str]) -> dict[str, str]:
    """How the text of each date input of a model is written in its training data: set in
    ``columns.date_formats``, or decided from the whole column (ISO dates need none). Dates that
    read both as day/month and as month/day are refused - a model learns them one way only."""
    from churnops.errors import ConfigError
    from churnops.escape import one_line_short
    from churnops.pipeline.starter import date_writings

    formats = {name: config.columns.date_formats[name] for name in columns if name in config.columns.date_formats}
    for name, way in date_writings(frame, [name for name in columns if name not in formats]).items():
        if way is None:
            shown = one_line_short(name, 40)
            raise ConfigError(
                f"the model's date input '{shown}' reads as day/month and as month/day: set columns.date_formats = "
                f'{{ "{shown}" = "day-first" }} (or "month-first", or a format such as "%d/%m/%Y")'
            )
        formats[name] = way
    return formats


def text_inputs(loaded: registry.LoadedModel) -> list[str]:
    """The model's categorical inputs it learned as codes that a number would alter (``07014``):
    a CSV's cells of them are read as text, zeros kept, to meet the categories it learned."""
    from churnops.integrations.model import known_categories
    from churnops.monitor.batch import read_as_numbers_alters

    return [
        name
        for name, known in known_categories(loaded.model).items()
        if any(read_as_numbers_alters(value) for value in known)
    ]


def score_chunks(
    loaded: registry.LoadedModel,
    chunks: Iterable[Any],
    date_formats: dict[str, str] | None = None,
    kept: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Churn probabilities of every row of a chunked (polars) table; dates read as the model
    learned them (its ``date_formats``), or as ``date_formats`` (the run's) says. With ``kept`` (a
    list it fills with each chunk's rows scored), the rows with no value in any column - blank
    lines, left out of the monitoring - are left out here too (``predict`` scores every row)."""
    import polars as pl

    from churnops.integrations.model import known_categories, predict_probabilities
    from churnops.monitor.prepare import coerce_numerical, empty_rows_mask

    columns = loaded.metadata.features.columns
    numerical = set(loaded.metadata.features.numerical)
    dates = loaded.metadata.features.dates
    formats = {**loaded.metadata.date_formats, **{k: v for k, v in (date_formats or {}).items() if k in dates}}
    categories = known_categories(loaded.model)
    out = []
    not_numbers: dict[str, tuple[int, Any]] = {}  # numerical input: cells that are not numbers, an example
    not_dates: dict[str, tuple[int, Any]] = {}
    unseen: dict[str, tuple[int, Any]] = {}  # categorical input: cells the model never learned, an example
    ranges = loaded.metadata.input_ranges
    outside: dict[str, tuple[int, Any]] = {}  # numerical or date input: cells far outside what it learned
    for chunk in chunks:
        if kept is not None:
            empty = empty_rows_mask(chunk, list(chunk.columns))
            kept.append(np.ones(chunk.height, dtype=bool) if empty is None else ~empty.to_numpy())
            chunk = chunk if empty is None else chunk.filter(~empty)
        missing = [c for c in columns if c not in chunk.columns]
        if missing:
            raise InputDataError(
                f"the data lacks the model's {plural(len(missing), 'input column', 'input columns')} "
                f"{', '.join(missing)}"
            )
        inputs = chunk.select(columns)
        text = [c for c in columns if c in numerical and inputs.schema[c] == pl.String]
        if text:  # numbers as monitoring reads them (1,234.50, $88): a cell that is not one is missing
            coerced = {c: coerce_numerical(inputs[c]) for c in text}
            for name, read in coerced.items():
                if read.unparsable:
                    cells = inputs[name].filter(read.series.is_null() & inputs[name].is_not_null())
                    _tally(not_numbers, name, read.unparsable, cells[0] if len(cells) else None)
            inputs = inputs.with_columns([read.series.alias(name) for name, read in coerced.items()])
        inputs, unreadable = model_dates(inputs, dates, formats)
        for name, (count, example) in unreadable.items():
            _tally(not_dates, name, count, example)
        for name, known in categories.items():
            if name in inputs.columns:
                _tally(unseen, name, *_unseen(inputs[name], known))
        for name, (low, high) in ranges.items():
            if name in inputs.columns:
                _tally(outside, name, *_far_outside(inputs[name], low, high))
        try:
            out.append(predict_probabilities(loaded.model, inputs))
        except ValueError as exc:  # a value the model cannot read (e.g. text in a numeric input)
            raise InputDataError(f"the model cannot score this data: {str(exc).splitlines()[0][:300]}") from None
    rows = sum(len(part) for part in out)
    mostly = [name for name, (count, _) in not_numbers.items() if count > MOSTLY_NOT_NUMBERS * rows]
    if mostly:
        from churnops.monitor.quality import decimal_commas

        count, example = not_numbers[mostly[0]]
        commas = decimal_commas([example])
        raise InputDataError(
            f"the model's input {mostly[0]}: {count:,} of {rows:,} cells are not numbers (such as {_shown(example)}) - "
            "scored as missing, its scores would not be the model's"
            + ("; decimal commas: set data.decimal = ','" if commas else "")
        )
    if not_numbers:
        shown = ", ".join(f"{name} ({count:,} cells)" for name, (count, _) in list(not_numbers.items())[:5])
        logger.warning("the model scored cells that are not numbers as missing values: %s", shown)
    undated = _mostly(not_dates, rows)
    if undated is not None:
        count, example = not_dates[undated]
        way = formats.get(undated)
        raise InputDataError(
            f"the model's input {undated}: {count:,} of {rows:,} cells are not dates it can read (such as "
            f"{_shown(example)}{f'; it reads them as {way}' if way else ''}) - scored as missing, its scores would not "
            "be the model's"
        )
    if not_dates:
        logger.warning("the model scored cells that are not dates as missing values: %s", _listed(not_dates))
    name = _mostly(unseen, rows)
    if name is not None:
        count, example = unseen[name]
        learned = ", ".join(repr(value) for value in categories[name][:5]) + (
            ", ..." if len(categories[name]) > 5 else ""
        )
        raise InputDataError(
            f"the model's input {name}: {count:,} of {rows:,} cells hold categories the model never learned (such as "
            f"{_shown(example)}; it learned {learned}) - scored as unknown, its scores would not be the model's"
        )
    if unseen:
        logger.warning("the model scored categories it never learned as unknown: %s", _listed(unseen))
    name = _mostly(outside, rows)
    if name is not None:
        count, example = outside[name]
        low, high = ranges[name]
        raise InputDataError(
            f"the model's input {name}: {count:,} of {rows:,} cells lie far outside what the model learned ({low} to "
            f"{high}), such as {example} - check how the file writes it (data.decimal, "
            "columns.date_formats); its scores would not be the model's"
        )
    if outside:
        shown = _listed(
            outside, lambda name, example: f"such as {example}; it learned {ranges[name][0]} to {ranges[name][1]}"
        )
        logger.warning("the model scored values far outside what it learned: %s", shown)
    return np.concatenate(out) if out else np.zeros(0)


def _mostly(counts: dict[str, tuple[int, Any]], rows: int) -> str | None:
    """The first input with more than :data:`MOSTLY_NOT_NUMBERS` of its cells counted in ``counts``."""
    return next((name for name, (count, _) in counts.items() if count > MOSTLY_NOT_NUMBERS * rows), None)


def _listed(counts: dict[str, tuple[int, Any]], detail: Callable[[str, Any], str] | None = None) -> str:
    """The first five inputs of ``counts`` for a warning: ``name (N cells, such as EXAMPLE)``."""
    said = detail or (lambda _, example: f"such as {_shown(example)}")
    return ", ".join(
        f"{name} ({count:,} cells, {said(name, example)})" for name, (count, example) in list(counts.items())[:5]
    )


FAR_OUTSIDE = 1.0
"""A value lies far outside what the model learned beyond this many times the learned range
(at least 1 for numbers, 50 years for dates) on either side: a number read with the wrong decimal
mark, a placeholder date such as 9999-12-31."""
DATE_MARGIN_DAYS = 50 * 365
"""Dates move on (accounts opened, contacts made after the model learned): a date is far outside
only further than the learned span, and than 50 years, from what the model learned."""


def _far_outside(series: Any, low: Any, high: Any) -> tuple[int, Any]:
    """Cells of ``series`` far outside ``[low, high]`` (:data:`FAR_OUTSIDE`), and the first of them
    as text. None for an input the model learned as one value: it cannot split on it, any value
    scores alike."""
    import polars as pl

    if low == high:
        return 0, None

    if isinstance(low, str):  # a date input, read as dates already
        if series.dtype != pl.Date:
            return 0, None
        first, last = date.fromisoformat(low), date.fromisoformat(high)
        margin = timedelta(days=max((last - first).days, DATE_MARGIN_DAYS) * FAR_OUTSIDE)
        lower = first - margin if first - date.min > margin else date.min
        upper = last + margin if date.max - last > margin else date.max
        bounds: tuple[Any, Any] = (lower, upper)
    else:
        if not series.dtype.is_numeric():
            return 0, None
        series = series.cast(pl.Float64)
        margin = max(high - low, abs(high), abs(low), 1.0) * FAR_OUTSIDE
        bounds = (low - margin, high + margin)
    far = series.filter((series < bounds[0]) | (series > bounds[1]))
    if not far.len():
        return 0, None
    first_far = far[0]
    shown = first_far.isoformat() if isinstance(first_far, date) else _shown(first_far)
    return far.len(), shown


def _tally(counts: dict[str, tuple[int, Any]], name: str, count: int, example: Any) -> None:
    """Add ``count`` cells of ``name`` to ``counts``, keeping the first example seen."""
    if count:
        seen, first = counts.get(name, (0, example))
        counts[name] = (seen + count, first)


def _shown(value: Any) -> str:
    """A cell's value in a message: quoted, at most 40 characters."""
    text = repr(value if not isinstance(value, float) or not value.is_integer() else int(value))
    return text if len(text) <= 40 else text[:37] + "..."


def _neutralise(frame: Any) -> Any:
    """Cells and column names that a spreadsheet would run as formulas get a leading quote (CSV only)."""
    import polars as pl

    raw = [name for name, kind in frame.schema.items() if kind == pl.Binary]
    if raw:  # (an internal error before)
        raise InputDataError(
            f"column {one_line_short(raw[0], 60)!r} holds bytes, which a CSV file cannot hold: write the scores as "
            "Parquet (--output FILE.parquet)"
        )

    renamed = {name: f"'{name}" for name in frame.columns if _is_formula(name)}
    if renamed:
        names = [renamed.get(name, name) for name in frame.columns]
        if len(set(names)) != len(names):
            clash = sorted(name for name in renamed if renamed[name] in frame.columns)[0]
            raise InputDataError(
                f"column names {clash!r} and {renamed[clash]!r} would be the same once {clash!r} is protected "
                "against spreadsheet formulas: rename one, or write Parquet"
            )
        frame = frame.rename(renamed)
    # text, and categories (a Parquet file's dictionary columns) written as their text
    text = [
        name
        for name, dtype in frame.schema.items()
        if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)
    ]
    if not text:
        return frame
    return frame.with_columns(
        pl.when(cell.str.contains(FORMULA_START)).then("'" + cell).otherwise(cell).alias(name)
        for name in text
        for cell in [pl.col(name).cast(pl.String)]
    )


def _is_formula(text: str) -> bool:
    return csv_cell(text) != text


@dataclass(frozen=True)
class PredictOutcome:
    path: Path
    rows: int
    model: str
    """``NAME vVERSION``"""
    timings: dict[str, float]


def predict(
    config: Config, source: Path, output: Path | None = None, progress: Progress | None = None, force: bool = False
) -> PredictOutcome:
    """``churnops predict``: score a table with the champion; write it with probability and label.
    A file at the output that does not hold a probability column is replaced only with ``force``."""
    import polars as pl

    started = time.perf_counter()
    target = output or source.with_name(f"{source.stem}_predictions{source.suffix}")
    flag = "--output" if output else "the predictions"
    config.check_paths(inputs={"--input": source}, outputs={flag: target})
    if not force:  # its name in the CSV header, or in the Parquet footer's schema
        predictions = PROBABILITY.encode()
        refuse_foreign(
            target,
            flag,
            lambda head, tail: predictions in head.split(b"\n", 1)[0] or predictions in tail,
            "predictions",
        )
    fmt = table_format(target)
    reader = TableReader(source, dialect=config.dialect)
    with heartbeat(progress, "loading the champion"):
        loaded = registry.load_alias(store_of(config), config.model.name, "champion")
    missing = [c for c in loaded.metadata.features.columns if c not in reader.header]
    if missing:
        raise InputDataError(
            f"{source}: lacks the model's {plural(len(missing), 'input column', 'input columns')} {', '.join(missing)}"
        )
    loaded_at = time.perf_counter()
    threshold = loaded.metadata.threshold

    def scored(formats: dict[str, str]) -> list[Any]:
        reader = TableReader(source, dialect=config.dialect, text=text_inputs(loaded))
        reader.progress = _reading(progress, f"scoring {source.name}")
        parts = []
        for chunk in reader:
            probabilities = score_chunks(loaded, [chunk], formats)
            parts.append(
                chunk.with_columns(
                    pl.Series(PROBABILITY, probabilities),
                    pl.Series(PREDICTION, (probabilities >= threshold).astype(np.int8)),
                )
            )
        return parts

    frame = pl.concat(whole_columns(config, source, config.columns.date_formats, scored))
    scored_at = time.perf_counter()
    with heartbeat(progress, f"writing {target.name}"), atomic_path(target) as tmp:
        write_frame(_neutralise(frame) if fmt == "csv" else frame, tmp, fmt, config.dialect)
    timings = {
        "model_load_s": loaded_at - started,
        "score_s": scored_at - loaded_at,
        "write_s": time.perf_counter() - scored_at,
    }
    version = loaded.version
    return PredictOutcome(target, frame.height, f"{version.name} v{version.version}", timings)


def prepare_model_imports(config: Config) -> registry.ModelVersion | ModelUnavailable | None:
    """The champion to monitor, looked up once per run: None when there is none and none is
    expected, or model monitoring is off; :class:`ModelUnavailable` when the registry cannot be
    read, or no champion is found while one is expected (``model.monitor = "required"``, or the
    earlier run checked one). A registry that does not exist yet is the caller's to tell
    (:func:`churnops.pipeline.champion.without_registry`, which loads none of this). When scoring
    needs scikit-learn and skops (seconds of pure imports), they are imported in a background
    thread that overlaps the reading of the data.
    Loading itself still happens, and is checked, in :func:`model_section`."""
    import threading

    from churnops.integrations.model_artifact import import_skops
    from churnops.redact import redact

    if config.model.monitor == "off":
        return None
    where = redact(config.model_tracking_uri())
    try:
        version = registry.find_alias(store_of(config), config.model.name, "champion")
    except ChurnopsError as exc:  # already said in churnops' words (see registry.failure)
        return ModelUnavailable(f"the model registry cannot be read: {exc}")
    except Exception as exc:  # noqa: BLE001 - a broken or unreachable store fails in many ways
        return ModelUnavailable(f"the model registry {where} cannot be read ({registry.failure(exc, where)})")
    if version is None:
        return expected(config, f"there is no {config.model.name}@champion in the model registry {where}")
    if registry.has_array_form(version):  # the array form needs neither
        return version
    thread = threading.Thread(target=import_skops, name="churnops-model-imports")
    thread.daemon = True
    thread.start()
    return version


def unavailable_section(config: Config, error: str) -> dict[str, Any]:
    """The ``model`` section of a champion that could not be found or read."""
    return _refused_section(
        config, None, error, {"model_load_s": 0.0, "score_current_s": 0.0, "score_reference_s": 0.0}
    )


def model_section(
    config: Config,
    result: MonitoringResult,
    reference: Path,
    reference_rows: tuple[int, int] | None,
    current: Path,
    version: registry.ModelVersion | None,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], ColumnDrift | None] | None:
    """The ``model`` part of the metrics for the champion ``version`` (from
    :func:`prepare_model_imports`): prediction drift, performance, decay; None without a champion.

    A champion whose artifact is refused is not scored: the section then holds ``error`` (and
    nulls), one warning says so, and the monitoring goes on.
    """
    if config.model.monitor == "off" or version is None:
        return None
    store = store_of(config)
    started = time.perf_counter()
    try:
        with heartbeat(progress, f"model: loading {version.name} v{version.version}"):
            loaded = registry.load_version(store, version)
    except ModelRefusedError as exc:
        logger.warning("model check skipped: %s", exc)
        timings = {"model_load_s": time.perf_counter() - started, "score_current_s": 0.0, "score_reference_s": 0.0}
        return _refused_section(config, version, str(exc), timings), result.prediction_drift
    loaded_at = time.perf_counter()
    threshold = loaded.metadata.threshold

    kept: list[np.ndarray] = []  # the batch's rows scored: all but those with no value (blank lines)

    def score_current(formats: dict[str, str]) -> np.ndarray:
        reader = TableReader(current, dialect=config.dialect, text=text_inputs(loaded))
        reader.progress = _reading(progress, f"model: scoring {current.name}")
        kept.clear()
        return score_chunks(loaded, reader, formats, kept)

    current_p = whole_columns(config, current, config.columns.date_formats, score_current)
    scored_rows = np.concatenate(kept) if kept else np.ones(len(current_p), dtype=bool)
    scored_at = time.perf_counter()
    reference_p, cache_status = _reference_scores(config, loaded, reference, reference_rows, result, progress)
    reference_at = time.perf_counter()
    settings = settings_from_config(config)
    plan = ColumnPlan(PROBABILITY, "prediction", "numerical", True)
    drift = column_drift(
        plan,
        NumericalSample.from_values(reference_p, len(reference_p), 0, 0),
        NumericalSample.from_values(current_p, len(current_p), 0, 0),
        settings,
    )
    metadata = loaded.metadata
    section: dict[str, Any] = {
        "name": version.name,
        "version": version.version,
        "alias": version.alias,
        "run_id": version.run_id,
        "threshold": threshold,
        "reference": metadata.reference_metrics,
        "estimated": estimated_metrics(current_p, threshold),
        "realized": _realized(config, current, current_p, threshold, scored_rows),
        "prediction_drift": drift.to_dict(),
        "feature_importance": metadata.importance,
        "importance_method": metadata.importance_method,
    }
    reference_auc = (section["reference"] or {}).get("roc_auc")
    observed = (section["realized"] or section["estimated"]).get("roc_auc")
    section["decay"] = {
        "basis": "realized" if section["realized"] else "estimated",
        **decay(config, reference_auc, observed),
    }
    importance = section["feature_importance"]
    top = list(importance)[: config.model.important_top_k]
    drifted = list(result.dataset_drift.drifted_columns)
    section["drifted_by_importance"] = sorted(drifted, key=lambda name: -importance.get(name, 0.0))
    section["important_drifted"] = [name for name in section["drifted_by_importance"] if name in top]
    section["reference_scores_cache"] = cache_status
    section["timings"] = {
        "model_load_s": loaded_at - started,
        "score_current_s": scored_at - loaded_at,
        "score_reference_s": reference_at - scored_at,
    }
    return section, drift


def decay(config: Config, reference_auc: float | None, observed: float | None) -> dict[str, Any]:
    """The model's decay rule, for a batch and for live traffic alike: an ROC-AUC below
    ``model.min_auc``, or fallen from the reference's by more than ``model.max_auc_drop``."""
    drop = (
        reference_auc - observed
        if reference_auc is not None and observed is not None and observed == observed
        else None
    )
    below = observed == observed and observed is not None and observed < config.model.min_auc
    return {
        "roc_auc_drop": drop,
        "max_auc_drop": config.model.max_auc_drop,
        "min_auc": config.model.min_auc,
        "below_min_auc": below,
        "detected": (drop is not None and drop > config.model.max_auc_drop) or below,
    }


MIN_LABELLED_ROWS = 500
"""A batch whose labels have come for some rows only is measured on them from this many rows on
(fewer: the ROC-AUC would move by more than the decay it is to tell)."""


def _realized(
    config: Config, current: Path, probabilities: np.ndarray, threshold: float, scored: np.ndarray | None = None
) -> dict[str, Any] | None:
    """Realized metrics on the batch's rows that have their label (the others' labels have not
    come yet), read as monitoring reads the target; None without two outcomes to measure."""
    import polars as pl

    target = config.columns.target
    if not target or target not in TableReader(current, dialect=config.dialect).header:
        return None
    labels = pl.concat(list(TableReader(current, columns=[target], dialect=config.dialect)))[target]
    if scored is not None and not scored.all():  # the rows the model scored (no blank line)
        labels = labels.filter(pl.Series(scored))
    if labels.null_count():  # measured on the labelled rows: half the labels are half the evidence
        known = labels.is_not_null().to_numpy()
        if known.sum() < MIN_LABELLED_ROWS:
            if known.any():
                logger.info("realized performance not measured: only %s rows have their label yet", f"{known.sum():,}")
            return None
        logger.info(
            "realized performance measured on the %s labelled rows of %s", f"{known.sum():,}", f"{known.size:,}"
        )
        labels, probabilities = labels.filter(pl.Series(known)), probabilities[known]
    positive = config.columns.target_positive
    if positive is not None or not set(labels.unique().to_list()) <= {0, 1}:  # read as monitoring does
        from churnops.monitor.prepare import sort_labels
        from churnops.monitor.target import batch_positive_index

        found = sort_labels(labels.unique().to_list())
        index, decided = batch_positive_index(found, positive) if len(found) <= 2 else (None, "")
        if index is None or decided == "last in order":
            return None
        labels = (labels == found[index]).cast(pl.Int64)
    if labels.n_unique() < 2:  # ROC-AUC and PR-AUC need both outcomes: nothing realized to measure
        logger.info("realized performance not measured: every label of the batch is %s", labels[0])
        return None
    return classification_metrics(labels.to_numpy(), probabilities, threshold)


def _refused_section(
    config: Config, version: registry.ModelVersion | None, error: str, timings: dict[str, float]
) -> dict[str, Any]:
    """The ``model`` section of a champion that was not checked (its artifact refused, or no
    champion found where one is expected: ``version`` None): what was found, and why nothing was
    measured. Every field the report reads is present, as null or not detected."""
    return {
        "name": version.name if version else config.model.name,
        "version": version.version if version else None,
        "alias": version.alias if version else "champion",
        "run_id": version.run_id if version else None,
        "error": error,
        "threshold": None,
        "reference": None,
        "estimated": None,
        "realized": None,
        "prediction_drift": {
            "name": PROBABILITY,
            "test": NOT_MEASURED,
            "statistic": None,
            "threshold": None,
            "drift_detected": None,
        },
        "feature_importance": {},
        "decay": {
            "basis": NOT_MEASURED,
            "roc_auc_drop": None,
            "max_auc_drop": config.model.max_auc_drop,
            "detected": False,
        },
        "drifted_by_importance": [],
        "important_drifted": [],
        "timings": timings,
    }


def _reference_scores(
    config: Config,
    loaded: registry.LoadedModel,
    reference: Path,
    rows: tuple[int, int] | None,
    result: MonitoringResult,
    progress: Progress | None,
) -> tuple[np.ndarray, str]:
    """The champion's probabilities on the reference window, cached per model version and reference.

    Returns them and the cache status: ``hit``, ``miss`` (computed and saved), ``rebuilt`` (the
    cached file failed a check - see :func:`read_scores` - and was replaced) or ``off`` (no cache:
    ``--no-cache``, ``monitor.use_profile_cache = false``, or a link in its way).
    """
    version = loaded.version
    read = "dates-read-whole|no-empty-rows"  # how the reference was scored: another way, another cache
    key = f"{version.name}|{version.version}|{version.run_id}|{sha256_file(reference)}|{rows}|{read}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    root = config.resolve(config.paths.profile_cache)
    cache = root / "predictions" / f"{digest}.npy"
    status = "miss"
    linked = linked_folder(cache, root) if config.monitor.use_profile_cache else None
    if not config.monitor.use_profile_cache:  # --no-cache: nothing read from or written to a cache
        status = "off"
    elif linked is not None:
        logger.warning("not caching the reference predictions: %s is a symbolic link (remove it)", linked)
        status = "off"
    elif os.path.lexists(cache):
        scores = read_scores(cache, result.reference.rows)
        if isinstance(scores, np.ndarray):
            return scores, "hit"
        logger.warning("rebuilding the cache of reference predictions %s: %s", cache, scores)
        status = "rebuilt"

    def score_reference(formats: dict[str, str]) -> np.ndarray:
        reader = TableReader(reference, rows, dialect=config.dialect_for("reference"), text=text_inputs(loaded))
        reader.progress = _reading(progress, f"model: scoring {reference.name}")
        return score_chunks(loaded, reader, formats, [])  # its blank lines left out, as the profile leaves them

    scores = whole_columns(config, reference, config.columns.date_formats, score_reference)
    if status == "off":
        return scores, status
    try:
        with atomic_path(cache) as tmp, tmp.open("wb") as handle:
            np.save(handle, scores, allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        logger.warning("could not cache the reference predictions: %s", exc)
    return scores, status


def read_scores(path: Path, expected_rows: int) -> np.ndarray | str:
    """Cached probabilities if the file holds exactly what churnops writes, else why not.

    A regular file (not a link) holding a 1-D float64 array of ``expected_rows`` finite values
    in [0, 1], read without pickle.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    limit = NPY_HEADER_BYTES + 8 * expected_rows
    try:
        handle = os.open(path, flags)
    except OSError as exc:
        return f"cannot open it ({exc.strerror or exc}; a symbolic link is never followed)"
    with os.fdopen(handle, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size > limit:
            return "larger than the predictions it should hold"
        data = stream.read(limit + 1)
    try:
        scores = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        return f"not a NumPy array file ({type(exc).__name__})"
    if not isinstance(scores, np.ndarray) or scores.dtype != np.dtype(np.float64) or scores.ndim != 1:
        return "not a 1-D float64 array"
    if len(scores) != expected_rows:
        return f"{len(scores):,} values for {expected_rows:,} reference rows"
    if len(scores) and not (np.isfinite(scores).all() and scores.min() >= 0.0 and scores.max() <= 1.0):
        return "values that are not probabilities (NaN, infinite or outside [0, 1])"
    return scores
