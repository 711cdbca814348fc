"""Seed phase 5 and its roadmap: train, predict, monitor the model, retrain with champion/challenger."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from churnops import __version__
from churnops.config import Config
from churnops.data.io import TableReader, atomic_path, read_table, sha256_file, table_format, write_frame
from churnops.errors import ConfigError, InputDataError
from churnops.integrations import mlflow_registry as registry
from churnops.integrations.model import SKOPS_TRUSTED_TYPES, FeatureSpec
from churnops.monitor.columns import ColumnPlan
from churnops.monitor.drift import column_drift
from churnops.monitor.performance import best_f1_threshold, classification_metrics, estimated_metrics
from churnops.monitor.prepare import NumericalSample
from churnops.monitor.profile import build_profile
from churnops.monitor.results import ColumnDrift, MonitoringResult
from churnops.monitor.settings import settings_from_config

logger = logging.getLogger(__name__)
PROBABILITY = "churn_probability"
PREDICTION = "churn_prediction"


def store_of(config: Config) -> registry.Store:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or config.model.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{config.resolve(uri.removeprefix('sqlite:///'))}"
    return registry.Store(uri, config.resolve(config.model.artifact_dir), config.model.experiment)


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


def labels_of(frame: Any, target: str) -> Any:
    if target not in frame.columns:
        raise InputDataError(f"the data has no target column '{target}' (columns.target in churnops.toml)")
    values = frame[target]
    if values.isna().any() or not set(values.unique()) <= {0, 1}:
        raise InputDataError(f"target column '{target}' must hold 0/1 labels without missing values")
    return values.astype(int).to_numpy()


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


def fit_and_measure(config: Config, frame: Any, spec: FeatureSpec, seed: int) -> tuple[Any, dict[str, Any]]:
    """Fit on a stratified training split; metrics, threshold and importance on the validation split."""
    from sklearn.model_selection import train_test_split

    from churnops.integrations.model import build_pipeline, permutation_importance

    target = config.columns.target or "Churn Flag"
    labels = labels_of(frame, target)
    train, validation, y_train, y_validation = train_test_split(
        frame, labels, test_size=config.model.validation_share, stratify=labels, random_state=seed
    )
    as_of = config.model.as_of or date.today().isoformat()
    pipeline = build_pipeline(spec, seed, as_of)
    pipeline.fit(train[spec.columns], y_train)
    probabilities = pipeline.predict_proba(validation[spec.columns])[:, 1]
    threshold = best_f1_threshold(y_validation, probabilities)
    metrics = classification_metrics(y_validation, probabilities, threshold)
    importance = permutation_importance(pipeline, validation, y_validation, spec, seed)
    facts = {
        "threshold": threshold,
        "metrics": metrics,
        "importance": importance,
        "as_of": as_of,
        "train_rows": int(len(train)),
        "validation": validation,
    }
    return pipeline, facts


def train(config: Config, alias: str = "champion") -> TrainOutcome:
    """``churnops train``: fit on the reference window, log everything, register, set the alias."""
    source = config.resolve(config.paths.reference)
    frame = read_table(source, config.data.reference_rows, config.dialect).to_pandas()
    spec = feature_spec(config, frame)
    if not spec.columns:
        raise InputDataError(f"{source}: no feature column to train on")
    seed = config.model.seed
    pipeline, facts = fit_and_measure(config, frame, spec, seed)
    return _log(config, pipeline, facts, spec, source, alias, "train", {"data_rows": len(frame)})


def _log(
    config: Config,
    pipeline: Any,
    facts: dict[str, Any],
    spec: FeatureSpec,
    source: Path,
    alias: str,
    kind: str,
    extra_params: dict[str, Any],
) -> TrainOutcome:
    from churnops.integrations.model import hyperparameters

    metrics = facts["metrics"]
    metadata = {
        "threshold": facts["threshold"],
        "reference_metrics": metrics,
        "importance": facts["importance"],
        "features": spec.to_dict(),
        "target": config.columns.target,
        "as_of": facts["as_of"],
    }
    logged = registry.log_model(
        store_of(config),
        config.model.name,
        pipeline,
        facts["validation"][spec.columns].head(5),
        params={
            **hyperparameters(pipeline),
            "seed": config.model.seed,
            "threshold": round(facts["threshold"], 6),
            "train_rows": facts["train_rows"],
            "features": len(spec.columns),
            **extra_params,
        },
        metrics={f"validation_{k}": float(v) for k, v in metrics.items()},
        tags={
            "data_path": str(source),
            "data_sha256": sha256_file(source),
            "churnops_version": __version__,
            "kind": kind,
        },
        metadata=metadata,
        artifacts={
            "config.json": config.model_dump(mode="json"),
            "feature_importance.json": facts["importance"],
            "features.json": spec.to_dict(),
        },
        pip_requirements=_requirements(),
        run_name=kind,
        trusted_types=SKOPS_TRUSTED_TYPES,
    )
    if alias:
        registry.set_alias(store_of(config), config.model.name, alias, logged.version)
    return TrainOutcome(logged.version, logged.run_id, metrics, facts["threshold"], facts["importance"], alias)


def score_frames(model: Any, metadata: dict[str, Any], chunks: Any) -> np.ndarray:
    """Churn probabilities of every row of a chunked table."""
    columns = [c for group in metadata["features"].values() for c in group]
    out = []
    for chunk in chunks:
        frame = chunk.to_pandas()
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputDataError(f"the data lacks the model's input column(s) {', '.join(missing)}")
        out.append(model.predict_proba(frame[columns])[:, 1])
    return np.concatenate(out) if out else np.zeros(0)


def _neutralise(frame: Any) -> Any:
    """Text cells that a spreadsheet would run as formulas get a leading quote (CSV outputs only)."""
    import polars as pl

    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(r"^[=+\-@\t\r]")).then("'" + pl.col(name)).otherwise(pl.col(name)).alias(name)
        for name in text
    )


def predict(config: Config, source: Path, output: Path | None = None) -> tuple[Path, int, str]:
    """``churnops predict``: score a table with the champion; write it with probability and label."""
    import polars as pl

    model, facts = registry.load_alias(store_of(config), config.model.name, "champion")
    metadata = facts["metadata"]
    threshold = float(metadata["threshold"])
    target = output or source.with_name(f"{source.stem}_predictions{source.suffix}")
    fmt = table_format(target)
    reader = TableReader(source, dialect=config.dialect)
    parts = []
    for chunk in reader:
        probabilities = score_frames(model, metadata, [chunk])
        parts.append(
            chunk.with_columns(
                pl.Series(PROBABILITY, probabilities),
                pl.Series(PREDICTION, (probabilities >= threshold).astype(np.int8)),
            )
        )
    frame = pl.concat(parts)
    with atomic_path(target) as tmp:
        write_frame(_neutralise(frame) if fmt == "csv" else frame, tmp, fmt, config.dialect)
    return target, frame.height, f"{facts['name']} v{facts['version']}"


def model_section(
    config: Config, result: MonitoringResult, reference: Path, reference_rows: tuple[int, int] | None, current: Path
) -> tuple[dict[str, Any], ColumnDrift] | None:
    """The ``model`` part of the metrics when a champion exists: prediction drift, performance, decay."""
    if config.model.monitor == "off":
        return None
    store = store_of(config)
    if not registry.champion_available(store, config.model.name):
        return None
    model, facts = registry.load_alias(store, config.model.name, "champion")
    metadata = facts["metadata"]
    threshold = float(metadata["threshold"])
    current_p = score_frames(model, metadata, TableReader(current, dialect=config.dialect))
    reference_p = _reference_scores(config, model, facts, reference, reference_rows)
    settings = settings_from_config(config)
    plan = ColumnPlan(PROBABILITY, "prediction", "numerical", True)
    drift = column_drift(
        plan,
        NumericalSample.from_values(reference_p, len(reference_p), 0, 0),
        NumericalSample.from_values(current_p, len(current_p), 0, 0),
        settings,
    )
    section: dict[str, Any] = {
        "name": facts["name"],
        "version": facts["version"],
        "alias": facts["alias"],
        "run_id": facts["run_id"],
        "threshold": threshold,
        "reference": metadata.get("reference_metrics"),
        "estimated": estimated_metrics(current_p, threshold),
        "realized": None,
        "prediction_drift": drift.to_dict(),
        "feature_importance": metadata.get("importance", {}),
    }
    target = config.columns.target
    if target:
        import polars as pl

        columns = TableReader(current, dialect=config.dialect).header
        if target in columns:
            labels = pl.concat(list(TableReader(current, columns=[target], dialect=config.dialect)))[target]
            if labels.null_count() == 0 and set(labels.unique().to_list()) <= {0, 1}:
                section["realized"] = classification_metrics(labels.to_numpy(), current_p, threshold)
    reference_auc = (section["reference"] or {}).get("roc_auc")
    observed = (section["realized"] or section["estimated"]).get("roc_auc")
    drop = reference_auc - observed if reference_auc is not None and observed == observed else None
    section["decay"] = {
        "basis": "realized" if section["realized"] else "estimated",
        "roc_auc_drop": drop,
        "max_auc_drop": config.model.max_auc_drop,
        "detected": drop is not None and drop > config.model.max_auc_drop,
    }
    importance = section["feature_importance"]
    top = list(importance)[: config.model.important_top_k]
    drifted = [name for name in result.dataset_drift.drifted_columns]
    section["drifted_by_importance"] = sorted(drifted, key=lambda name: -importance.get(name, 0.0))
    section["important_drifted"] = [name for name in section["drifted_by_importance"] if name in top]
    return section, drift


def _reference_scores(
    config: Config, model: Any, facts: dict[str, Any], reference: Path, rows: tuple[int, int] | None
) -> np.ndarray:
    """The champion's probabilities on the reference window, cached per model version and reference."""
    key = f"{facts['name']}|{facts['version']}|{facts['run_id']}|{sha256_file(reference)}|{rows}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    cache = config.resolve(config.paths.profile_cache) / "predictions" / f"{digest}.npy"
    if cache.is_file():
        try:
            return np.load(cache, allow_pickle=False)
        except (OSError, ValueError):
            logger.warning("ignoring unusable prediction cache %s", cache)
    scores = score_frames(model, facts["metadata"], TableReader(reference, rows, dialect=config.dialect))
    try:
        with atomic_path(cache) as tmp, tmp.open("wb") as handle:
            np.save(handle, scores, allow_pickle=False)
    except OSError as exc:
        logger.warning("could not cache the reference predictions: %s", exc)
    return scores


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


def retrain(config: Config) -> RetrainOutcome:
    """``churnops retrain``: a challenger on reference + labelled production data, judged on the newest rows.

    The newest ``retrain.holdout_share`` of the production batch is held out; champion and
    challenger are scored on it, and ``champion`` moves to the challenger only when its ROC-AUC
    is better by at least ``retrain.min_improvement``; otherwise it is tagged ``challenger``.
    """
    import pandas as pd

    from churnops.monitor.performance import roc_auc

    store = store_of(config)
    champion, facts = registry.load_alias(store, config.model.name, "champion")
    target = config.columns.target or "Churn Flag"
    reference_path = config.resolve(config.paths.reference)
    production_path = config.resolve(config.paths.production)
    reference = read_table(reference_path, config.data.reference_rows, config.dialect).to_pandas()
    production = read_table(production_path, dialect=config.dialect).to_pandas()
    labels_of(production, target)
    holdout_rows = max(int(round(len(production) * config.retrain.holdout_share)), 1)
    if holdout_rows >= len(production):
        raise ConfigError("retrain.holdout_share leaves no production row to train on")
    train_part, holdout = production.iloc[:-holdout_rows], production.iloc[-holdout_rows:]
    spec = FeatureSpec(**facts["metadata"]["features"])
    combined = pd.concat([reference, train_part], ignore_index=True)
    pipeline, fit_facts = fit_and_measure(config, combined, spec, config.model.seed)
    y_holdout = labels_of(holdout, target)
    champion_auc = roc_auc(y_holdout, champion.predict_proba(holdout[spec.columns])[:, 1])
    challenger_auc = roc_auc(y_holdout, pipeline.predict_proba(holdout[spec.columns])[:, 1])
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
    )
    if promoted:
        registry.set_alias(store, config.model.name, "previous-champion", facts["version"])
        registry.set_alias(store, config.model.name, "champion", logged.version)
        reason = (
            f"challenger v{logged.version} ROC-AUC {challenger_auc:.4f} beats champion v{facts['version']} "
            f"{champion_auc:.4f} by {improvement:+.4f} (>= {config.retrain.min_improvement:g}): promoted"
        )
    else:
        registry.set_alias(store, config.model.name, "challenger", logged.version)
        reason = (
            f"challenger v{logged.version} ROC-AUC {challenger_auc:.4f} vs champion v{facts['version']} "
            f"{champion_auc:.4f}: {improvement:+.4f} < {config.retrain.min_improvement:g}, the champion stays"
        )
    registry.log_comparison(
        store,
        "champion-vs-challenger",
        {"champion_roc_auc": champion_auc, "challenger_roc_auc": challenger_auc, "improvement": improvement},
        {
            "champion_version": facts["version"],
            "challenger_version": logged.version,
            "decision": "promoted" if promoted else "kept",
            "holdout_rows": str(holdout_rows),
        },
    )
    return RetrainOutcome(
        promoted,
        facts["version"],
        logged.version,
        champion_auc,
        challenger_auc,
        improvement,
        config.retrain.min_improvement,
        reason,
        holdout_rows,
    )


def pipeline_retrainer(config: Config, monitoring: Any) -> dict[str, Any]:
    """The pipeline's stage 5."""
    return retrain(config).to_dict()
