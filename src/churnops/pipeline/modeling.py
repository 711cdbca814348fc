"""Seed phase 5 and its roadmap: train, predict, monitor the model, retrain with champion/challenger.

Training and retraining live here; scoring with the champion (``predict`` and the model part of
``monitor``) lives in :mod:`churnops.pipeline.scoring`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from churnops._version import __version__
from churnops.config import Config
from churnops.data.io import read_table, sha256_file
from churnops.errors import ConfigError, InputDataError
from churnops.escape import plural
from churnops.integrations import mlflow_registry as registry
from churnops.integrations.model import SKOPS_TRUSTED_TYPES, FeatureSpec
from churnops.integrations.model_artifact import ModelRefusedError
from churnops.integrations.model_scorer import sha256_of
from churnops.monitor.performance import best_f1_threshold, classification_metrics
from churnops.monitor.prepare import sort_labels
from churnops.monitor.profile import build_profile
from churnops.monitor.settings import settings_from_config
from churnops.monitor.summaries import label_text
from churnops.pipeline.progress import Progress, heartbeat
from churnops.pipeline.scoring import (
    MIN_LABELLED_ROWS,
    MOSTLY_NOT_NUMBERS,
    model_dates,
    model_section,
    store_of,
    training_date_formats,
)
from churnops.redact import redacted_data

__all__ = ["feature_spec", "labels_of", "model_section", "pipeline_retrainer", "retrain", "store_of", "train"]
"""``model_section`` and ``store_of`` live in :mod:`churnops.pipeline.scoring`; callers import them from here too."""

logger = logging.getLogger(__name__)


def feature_spec(config: Config, frame: Any) -> FeatureSpec:
    """The model's inputs: every tested feature column of the reference, by monitored type."""
    import polars as pl

    settings = settings_from_config(config)
    profile = build_profile(pl.from_pandas(frame) if not isinstance(frame, pl.DataFrame) else frame, settings)
    spec: dict[str, list[str]] = {"numerical": [], "categorical": [], "datetime": []}
    for column in profile.tested:
        if column.plan.role == "feature":
            spec[column.plan.column_type].append(column.plan.name)
    return FeatureSpec(spec["numerical"], spec["categorical"], spec["datetime"])


def labels_of(frame: Any, target: str, positive: str | None = None) -> Any:
    """The target as 0/1 outcomes (1: the event, e.g. a churner): 0/1 or true/false as they are;
    two other values as monitoring reads them (``columns.target_positive``, or words such as
    Yes/No, churned/retained) - never guessed from their order, since a model trained on the
    wrong value predicts the opposite of what is asked."""
    from churnops.monitor.target import batch_positive_index

    if target not in frame.columns:
        raise InputDataError(f"the data has no target column '{target}' (columns.target in churnops.toml)")
    values = frame[target]
    if values.isna().any():
        raise InputDataError(f"target column '{target}' has missing values: give every row its label")
    found = sort_labels(values.unique().tolist())  # in the order monitoring gives a label's values
    if set(found) <= {0, 1} and positive is None:
        return values.astype(int).to_numpy()
    if len(found) == 2 or (positive is not None and len(found) == 1):
        index, decided = batch_positive_index(found, positive)
        shown = " and ".join(repr(label_text(value)) for value in found)
        if index is None:
            raise InputDataError(f"columns.target_positive {positive!r} is not a value of '{target}' ({shown})")
        if decided == "last in order":
            raise InputDataError(
                f"target column '{target}' holds {shown}: set columns.target_positive to the one that marks "
                "the event (a churner), e.g. --set columns.target_positive=..."
            )
        return (values == found[index]).astype(int).to_numpy()
    raise InputDataError(
        f"target column '{target}' must hold two labels (0/1, or e.g. Yes/No) without missing values; "
        f"it holds {len(found)} different values"
    )


def _requirements() -> list[str]:
    import sklearn

    return [f"churnops=={__version__}", f"scikit-learn=={sklearn.__version__}", "pandas<3", "numpy"]


@dataclass(frozen=True)
class TrainOutcome:
    version: str
    run_id: str
    metrics: dict[str, float]
    threshold: float
    importance: dict[str, float]
    alias: str
    timings: dict[str, float]
    """Seconds per stage: ``read_s``, ``fit_s`` (booster and calibration), ``validate_s``,
    ``importance_s``, ``log_s`` (MLflow) and ``total_s``."""


def input_ranges(frame: Any, spec: FeatureSpec) -> dict[str, list[Any]]:
    """The smallest and largest value of each numerical and date input in the (pandas) training
    frame: numbers, and dates as ISO text (inputs without any value are left out)."""
    import numpy as np
    import pandas as pd

    ranges: dict[str, list[Any]] = {}
    for name in spec.numerical:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        values = values[np.isfinite(values)]
        if values.size:
            ranges[name] = [float(values.min()), float(values.max())]
    for name in spec.dates:
        days = pd.to_datetime(frame[name], errors="coerce").dropna()
        if len(days):
            ranges[name] = [days.min().date().isoformat(), days.max().date().isoformat()]
    return ranges


def fit_and_measure(
    config: Config, frame: Any, spec: FeatureSpec, seed: int, progress: Progress | None = None
) -> tuple[Any, dict[str, Any]]:
    """Fit on a stratified training split; metrics, threshold and importance on the validation split.

    The training split is cut once more: the booster learns on most of it, the isotonic
    calibration on the rest (``CALIBRATION_SHARE``).
    """
    with heartbeat(progress, "preparing: loading scikit-learn"):
        from sklearn.model_selection import train_test_split

        from churnops.integrations.model import (
            CALIBRATION_SHARE,
            fit_calibrated,
            permutation_importance,
            predict_probabilities,
        )

    target = config.columns.target or "Churn Flag"
    labels = labels_of(frame, target, config.columns.target_positive)
    ranges = input_ranges(frame, spec)
    started = time.perf_counter()
    train, validation, y_train, y_validation = train_test_split(
        frame, labels, test_size=config.model.validation_share, stratify=labels, random_state=seed
    )
    fit, calibration, y_fit, y_calibration = train_test_split(
        train, y_train, test_size=CALIBRATION_SHARE, stratify=y_train, random_state=seed
    )
    as_of = config.model.as_of or date.today().isoformat()
    with heartbeat(progress, f"fitting: {len(fit):,} rows, calibrating on {len(calibration):,}"):
        pipeline = fit_calibrated(spec, (fit, y_fit), (calibration, y_calibration), seed, as_of)
    fitted = time.perf_counter()
    with heartbeat(progress, f"validating: {len(validation):,} rows"):
        probabilities = predict_probabilities(pipeline, validation[spec.columns])
        threshold = best_f1_threshold(y_validation, probabilities)
        metrics = classification_metrics(y_validation, probabilities, threshold)
    validated = time.perf_counter()
    with heartbeat(progress, f"permutation importance: {len(spec.columns)} columns"):
        importance, method = permutation_importance(pipeline, validation, y_validation, spec, seed)
    facts = {
        "input_ranges": ranges,
        "threshold": threshold,
        "metrics": metrics,
        "importance": importance,
        "importance_method": method,
        "as_of": as_of,
        "train_rows": int(len(fit)),
        "calibration_rows": int(len(calibration)),
        "validation": validation,
        "validation_probabilities": probabilities,
        "timings": {
            "fit_s": fitted - started,
            "validate_s": validated - fitted,
            "importance_s": time.perf_counter() - validated,
        },
    }
    return pipeline, facts


@contextlib.contextmanager
def registry_held(config: Config, purpose: str) -> Iterator[None]:
    """Hold the model registry's lock (:attr:`~churnops.config.Config.model_lock_path`) for a change
    of its aliases, from the champion read to the aliases moved: two runs take turns."""
    from churnops.pipeline.lock import workspace_lock

    def waiting(holder: str) -> None:
        logger.warning("the model registry is busy (%s): waiting for it", holder)

    with workspace_lock(config.model_lock_path, True, config.pipeline.lock_timeout_s, waiting, purpose=purpose):
        yield


def train(config: Config, alias: str = "champion", progress: Progress | None = None) -> TrainOutcome:
    """``churnops train``: fit on the reference window, log everything, register, set the alias."""
    with registry_held(config, "churnops train"):
        return _train(config, alias, progress)


def _train(config: Config, alias: str, progress: Progress | None) -> TrainOutcome:
    started = time.perf_counter()
    source = config.resolve(config.paths.reference)
    with heartbeat(progress, f"reading {source.name}"):
        table = read_table(source, config.data.reference_rows, config.dialect_for("reference"))
        spec = feature_spec(config, table)
        if not spec.columns:
            raise InputDataError(f"{source}: no feature column to train on")
        formats = training_date_formats(config, table, spec.dates)
        frame = _with_dates(table, spec, formats).to_pandas()
    read = time.perf_counter()
    seed = config.model.seed
    pipeline, facts = fit_and_measure(config, frame, spec, seed, progress)
    facts["date_formats"] = formats
    facts["timings"] = {"read_s": read - started, **facts["timings"]}
    if facts["metrics"]["roc_auc"] < config.model.min_auc:
        alias = ""  # registered, to be looked at, but never what scores or is monitored
    return _log(
        config, pipeline, facts, spec, source, alias, "train", {"data_rows": len(frame)}, started, progress, table
    )


SELF_CHECK_ROWS = 5000
"""Rows of the data a model learned from that it must score, loaded back as it was registered,
before an alias points at it."""


def cannot_score(config: Config, version: str, table: Any, progress: Progress | None = None) -> str | None:
    """Why registered ``version``, loaded back as every command loads it, cannot score rows of
    ``table`` (polars, as read: the data it learned from) - or None when it scores them. A model
    that refused its own data (a category it learned as missing made every text cell new) became
    the champion, and each later run said only "the model could not be checked"."""
    from churnops.pipeline.scoring import score_chunks

    rows = table.sample(SELF_CHECK_ROWS, seed=0) if table.height > SELF_CHECK_ROWS else table
    store = store_of(config)
    try:
        with heartbeat(progress, f"checking that v{version} scores {rows.height:,} of the rows it learned from"):
            score_chunks(registry.load_version(store, registry.find_version(store, config.model.name, version)), [rows])
    except (InputDataError, ModelRefusedError) as exc:
        return str(exc)
    return None


def _with_dates(table: Any, spec: FeatureSpec, formats: dict[str, str]) -> Any:
    """``table`` with the model's date inputs read as dates (:func:`model_dates`), saying how many
    cells could not be read."""
    table, unreadable = model_dates(table, spec.dates, formats)
    for name, (count, example) in unreadable.items():
        if count > MOSTLY_NOT_NUMBERS * table.height:
            raise InputDataError(
                f"the model's input {name}: {count:,} of {table.height:,} cells are not dates churnops can read (such "
                f'as {example!r}) - set columns.date_formats (e.g. {{ {name!r} = "%b %Y" }}) or leave the column '
                "out (columns.ignored)"
            )
        logger.warning(
            "%s: %s cells are not dates (such as %r): the model learns them as missing", name, count, example
        )
    return table


def _log(
    config: Config,
    pipeline: Any,
    facts: dict[str, Any],
    spec: FeatureSpec,
    source: Path,
    alias: str,
    kind: str,
    extra_params: dict[str, Any],
    started: float,
    progress: Progress | None = None,
    learned: Any = None,
) -> TrainOutcome:
    """Log and register the model; point ``alias`` at it once it scores rows of ``learned`` (the
    table it learned from, as read), else raise - registered, but nothing points at it."""
    from churnops.integrations.model_artifact import ModelMetadata, parse_metadata

    logging_started = time.perf_counter()
    metrics = facts["metrics"]
    metadata = ModelMetadata(
        threshold=float(facts["threshold"]),
        features=spec,
        as_of=facts["as_of"],
        reference_metrics=metrics,
        importance=facts["importance"],
        target=config.columns.target,
        importance_method=facts["importance_method"],
        date_formats=facts.get("date_formats") or {},
        input_ranges=facts.get("input_ranges") or {},
    ).to_dict()
    scorer = _array_form(
        pipeline, spec, facts["as_of"], facts["validation"][spec.columns], facts["validation_probabilities"]
    )
    if scorer is not None:
        metadata["scorer_sha256"] = sha256_of(scorer)
    parse_metadata(metadata)  # never register a model that churnops would refuse to load
    with heartbeat(progress, "MLflow: logging the run and the model"):
        logged = _log_to_mlflow(config, pipeline, facts, spec, source, kind, extra_params, metadata, scorer)
    problem = cannot_score(config, logged.version, learned, progress) if alias and learned is not None else None
    if problem is not None:
        raise InputDataError(
            f"{config.model.name} v{logged.version} is registered but not made the {alias}: it cannot score the data "
            f"it learned from ({problem})"
        )
    if alias:
        with heartbeat(progress, f"MLflow: pointing '{alias}' at v{logged.version}"):
            registry.set_alias(store_of(config), config.model.name, alias, logged.version)
    done = time.perf_counter()
    timings = {**facts["timings"], "log_s": done - logging_started, "total_s": done - started}
    return TrainOutcome(logged.version, logged.run_id, metrics, facts["threshold"], facts["importance"], alias, timings)


def _array_form(pipeline: Any, spec: FeatureSpec, as_of: str, validation: Any, expected: Any) -> bytes | None:
    """The model as arrays (``scorer.npz``), checked to give the pipeline's probabilities on the
    validation rows (``expected``) exactly; None when it cannot (only skops is written then)."""
    import numpy as np

    from churnops.integrations.model_scorer import SCORER_FILE, CompiledScorer, ScorerError, compile_pipeline

    try:
        data = compile_pipeline(pipeline, spec, as_of).to_bytes()
        arrays = CompiledScorer.from_bytes(data).predict(validation)
        if not np.array_equal(arrays, expected):
            raise ScorerError("its probabilities differ from the pipeline's on the validation rows")
    except ScorerError as exc:
        logger.warning("the model has no %s (%s): scoring it will import scikit-learn", SCORER_FILE, exc)
        return None
    return data


LINEAGE_SECTIONS = ("data", "columns", "thresholds", "drift", "model", "retrain")
"""The configuration sections a model's run keeps (how its data was read and it was trained):
never those that say where to send things and with what (metrics, history, notify, dvc, storage,
spark, publish, serve), whose secrets no redaction can be sure to find."""


def _lineage(config: Config) -> dict[str, Any]:
    """What of the configuration a model's run logs (:data:`LINEAGE_SECTIONS`), redacted all the same."""
    dump = config.model_dump(mode="json")
    kept = {name: dump[name] for name in LINEAGE_SECTIONS if name in dump}
    kept["model"] = {key: value for key, value in kept.get("model", {}).items() if key != "tracking_uri"}
    return redacted_data(kept)


def _log_to_mlflow(
    config: Config,
    pipeline: Any,
    facts: dict[str, Any],
    spec: FeatureSpec,
    source: Path,
    kind: str,
    extra_params: dict[str, Any],
    metadata: dict[str, Any],
    scorer: bytes | None = None,
) -> registry.LoggedModel:
    from churnops.integrations.model import hyperparameters

    return registry.log_model(
        store_of(config),
        config.model.name,
        pipeline,
        facts["validation"][spec.columns].head(5),
        params={
            **hyperparameters(pipeline),
            "seed": config.model.seed,
            "threshold": round(facts["threshold"], 6),
            "train_rows": facts["train_rows"],
            "calibration_rows": facts["calibration_rows"],
            "features": len(spec.columns),
            **extra_params,
        },
        metrics={f"validation_{k}": float(v) for k, v in facts["metrics"].items()},
        tags={
            "data_path": str(source),
            "data_sha256": sha256_file(source),
            "churnops_version": __version__,
            "kind": kind,
        },
        metadata=metadata,
        artifacts={
            "config.json": _lineage(config),  # read by all who read MLflow
            "feature_importance.json": facts["importance"],
            "features.json": spec.to_dict(),
        },
        pip_requirements=_requirements(),
        run_name=kind,
        trusted_types=SKOPS_TRUSTED_TYPES,
        model_files={"scorer.npz": scorer} if scorer is not None else None,
    )


@dataclass(frozen=True)
class RetrainOutcome:
    promoted: bool
    champion_version: str
    challenger_version: str
    champion_auc: float
    challenger_auc: float
    improvement: float
    min_improvement: float
    reason: str
    holdout_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "decision": "promoted" if self.promoted else "kept the champion"}


def retrain(config: Config, progress: Progress | None = None) -> RetrainOutcome:
    """``churnops retrain``: a challenger on reference + labelled production data, judged on the newest rows.

    The newest ``retrain.holdout_share`` of the production batch is held out; champion and
    challenger are scored on it, and ``champion`` moves to the challenger only when its ROC-AUC
    is better by at least ``retrain.min_improvement``; otherwise it is tagged ``challenger``.
    """
    with registry_held(config, "churnops retrain"):  # the champion read is the one replaced
        return _retrain(config, progress)


def _retrain(config: Config, progress: Progress | None) -> RetrainOutcome:
    import pandas as pd

    from churnops.integrations.model import predict_probabilities
    from churnops.monitor.performance import roc_auc

    started = time.perf_counter()
    store = store_of(config)
    with heartbeat(progress, "loading the champion"):
        champion = registry.load_alias(store, config.model.name, "champion")
    champion_version = champion.version.version
    target = config.columns.target or "Churn Flag"
    reference_path = config.resolve(config.paths.reference)
    production_path = config.resolve(config.paths.production)
    spec = champion.metadata.features
    reference_table = read_table(reference_path, config.data.reference_rows, config.dialect_for("reference"))
    formats = {**champion.metadata.date_formats, **training_date_formats(config, reference_table, spec.dates)}
    reference = _with_dates(reference_table, spec, formats).to_pandas()
    production_table = read_table(production_path, dialect=config.dialect)
    production = _with_dates(production_table, spec, formats).to_pandas()
    if target not in production.columns or production[target].isna().all():
        raise InputDataError(
            f"{production_path}: no labels in column '{target}' yet - retraining needs the batch's outcomes "
            "(columns.target); run it once they have come"
        )
    labelled = production[target].notna().to_numpy()
    if not labelled.all():  # outcomes come late: the rows that have theirs
        logger.info(
            "retraining on the %s rows of %s that have their label", f"{labelled.sum():,}", production_path.name
        )
        production = production[labelled].reset_index(drop=True)
    labels_of(production, target, config.columns.target_positive)
    holdout_rows = max(int(round(len(production) * config.retrain.holdout_share)), 1)
    if holdout_rows >= len(production):
        raise ConfigError("retrain.holdout_share leaves no production row to train on")
    train_part, holdout = production.iloc[:-holdout_rows], production.iloc[-holdout_rows:]
    missing = [c for c in spec.columns if c not in production.columns]
    if missing:
        raise InputDataError(
            f"{production_path}: lacks the model's {plural(len(missing), 'input column', 'input columns')} "
            f"{', '.join(missing)}"
        )
    combined = pd.concat([reference, train_part], ignore_index=True)
    pipeline, fit_facts = fit_and_measure(config, combined, spec, config.model.seed, progress)
    fit_facts["date_formats"] = formats
    y_holdout = labels_of(holdout, target, config.columns.target_positive)
    champion_auc = roc_auc(y_holdout, predict_probabilities(champion.model, holdout[spec.columns]))
    challenger_auc = roc_auc(y_holdout, predict_probabilities(pipeline, holdout[spec.columns]))
    improvement = challenger_auc - champion_auc
    promoted = improvement >= config.retrain.min_improvement
    logged = _log(
        config,
        pipeline,
        fit_facts,
        spec,
        production_path,
        "",
        "retrain",
        {"data_rows": len(combined), "holdout_rows": holdout_rows},
        started,
        progress,
    )
    problem = cannot_score(config, logged.version, production_table, progress) if promoted else None
    if problem is not None:  # never a champion that cannot score what it is to score
        promoted = False
        registry.set_alias(store, config.model.name, "challenger", logged.version)
        reason = (
            f"challenger v{logged.version} ROC-AUC {challenger_auc:.4f} beats champion v{champion_version} "
            f"{champion_auc:.4f}, but it cannot score the batch it learned from ({problem}): the champion stays"
        )
    elif promoted:
        registry.set_alias(store, config.model.name, "previous-champion", champion_version)
        registry.set_alias(store, config.model.name, "champion", logged.version)
        reason = (
            f"challenger v{logged.version} ROC-AUC {challenger_auc:.4f} beats champion v{champion_version} "
            f"{champion_auc:.4f} by {improvement:+.4f} (>= {config.retrain.min_improvement:g}): promoted"
        )
    else:
        registry.set_alias(store, config.model.name, "challenger", logged.version)
        reason = (
            f"challenger v{logged.version} ROC-AUC {challenger_auc:.4f} vs champion v{champion_version} "
            f"{champion_auc:.4f}: {improvement:+.4f} < {config.retrain.min_improvement:g}, the champion stays"
        )
    if challenger_auc < config.model.min_auc and promoted:
        reason += f"; it is still below model.min_auc {config.model.min_auc:g} - monitoring will say so"
    registry.log_comparison(
        store,
        "champion-vs-challenger",
        {"champion_roc_auc": champion_auc, "challenger_roc_auc": challenger_auc, "improvement": improvement},
        {
            "champion_version": champion_version,
            "challenger_version": logged.version,
            "decision": "promoted" if promoted else "kept",
            "holdout_rows": str(holdout_rows),
        },
    )
    return RetrainOutcome(
        promoted,
        champion_version,
        logged.version,
        champion_auc,
        challenger_auc,
        improvement,
        config.retrain.min_improvement,
        reason,
        holdout_rows,
    )


def pipeline_retrainer(config: Config, monitoring: Any) -> dict[str, Any]:
    """The pipeline's stage 5; ``{"skipped": why}`` for a batch whose labels have not come yet
    (monitored all the same: a night without labels is no failure of the pipeline)."""
    from churnops.data.io import TableReader

    target = config.columns.target or "Churn Flag"
    batch = config.resolve(config.paths.production)
    if target not in TableReader(batch, dialect=config.dialect).header:
        return {"skipped": f"no labels in the batch yet (no column '{target}'): retraining waits for them"}
    labelled = sum(chunk[target].count() for chunk in TableReader(batch, columns=[target], dialect=config.dialect))
    if not labelled:
        return {"skipped": f"no labels in the batch yet ('{target}' is empty): retraining waits for them"}
    if labelled < MIN_LABELLED_ROWS:  # as the model's realized performance waits for them
        return {
            "skipped": f"only {labelled:,} rows of the batch have their label yet: retraining waits for "
            f"{MIN_LABELLED_ROWS:,}"
        }
    return retrain(config).to_dict()
