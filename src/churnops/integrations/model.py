"""The churn classifier: a scikit-learn pipeline of feature preparation and gradient boosting.

Numbers pass through (histogram gradient boosting handles missing values itself), categories
are ordinal-encoded (unknown categories become missing), dates become ages in years as of a date
fixed at training time. Probabilities are calibrated (isotonic, on a calibration split the booster
never saw) so that CBPE can estimate performance without labels.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from churnops.errors import MissingDependencyError

DAYS_PER_YEAR = 365.25
SKOPS_TRUSTED_TYPES = [
    "churnops.integrations.model._ages",
    "functools.partial",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.utils.validation.check_array",
]
"""Every type a model's skops file may hold beyond plain data (numbers, arrays, containers):
exactly what ``churnops train`` writes. churnops trains with this list and loads with it; skops'
own default of trusting every scikit-learn estimator is not used (see
:func:`churnops.integrations.model_artifact.import_skops`), and a list written in the artifact's
MLmodel is never used."""

CALIBRATION_SHARE = 0.1
"""Share of the training split kept aside to fit the isotonic calibration. One booster calibrated
on held-out rows replaces three cross-fitted ones: a third of the fitting, scoring and artifact
size, for about 0.005 of ROC-AUC (see benchmarks/README.md)."""
IMPORTANCE_ROWS = 2_000
"""Permutation importance is measured on a stratified sample of at most this many validation rows."""
IMPORTANCE_REPEATS = 2
SINGLE_THREAD_ROWS = 200_000
"""Below this many rows, fitting and scoring use one OpenMP thread: per-iteration thread hand-offs
cost more than they save on small tables, and far more when another process shares the cores
(16,000 rows: 1.3 s of CPU on one thread, 3.5 s on two, on the 2-core development machine)."""

# OpenMP threads that spin while waiting make gradient boosting crawl (tens of times slower)
# when another process shares the cores, as on a busy CI agent; waiting passively costs nothing
# measurable when the machine is free. Only effective before scikit-learn loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _sklearn() -> Any:
    try:
        import sklearn
    except ImportError:
        raise MissingDependencyError("scikit-learn", "mlflow") from None
    return sklearn


def age_transformer(as_of: str) -> Any:
    """A transformer turning date columns into ages (years) as of ``as_of``."""
    _sklearn()
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(_ages, kw_args={"as_of": as_of}, feature_names_out="one-to-one")


def _ages(frame: Any, as_of: str) -> Any:
    import pandas as pd

    anchor = pd.Timestamp(as_of)
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        dates = pd.to_datetime(frame[column], errors="coerce")
        out[column] = (anchor - dates).dt.days / DAYS_PER_YEAR
    return out


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns the model reads, and how."""

    numerical: list[str]
    categorical: list[str]
    dates: list[str]

    @property
    def columns(self) -> list[str]:
        return [*self.numerical, *self.categorical, *self.dates]

    def to_dict(self) -> dict[str, list[str]]:
        return {"numerical": self.numerical, "categorical": self.categorical, "dates": self.dates}


def build_pipeline(spec: FeatureSpec, seed: int, as_of: str | None = None) -> Any:
    """The unfitted scikit-learn pipeline: feature preparation, then the booster (uncalibrated)."""
    _sklearn()
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    transformers = []
    if spec.numerical:
        transformers.append(("numbers", "passthrough", spec.numerical))
    if spec.categorical:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1, dtype=np.float64
        )
        transformers.append(("categories", encoder, spec.categorical))
    if spec.dates:
        transformers.append(("ages", age_transformer(as_of or date.today().isoformat()), spec.dates))
    features = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    n_numbers = len(spec.numerical)
    categorical_mask = [n_numbers <= i < n_numbers + len(spec.categorical) for i in range(len(spec.columns))]
    booster = HistGradientBoostingClassifier(
        learning_rate=0.06,
        max_iter=300,
        max_leaf_nodes=31,
        min_samples_leaf=40,
        l2_regularization=1.0,
        categorical_features=categorical_mask,
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline([("features", features), ("model", booster)])


@contextlib.contextmanager
def threads_for(rows: int) -> Iterator[None]:
    """One OpenMP thread for tables under :data:`SINGLE_THREAD_ROWS` rows, the default above."""
    if rows >= SINGLE_THREAD_ROWS:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def fit_calibrated(
    spec: FeatureSpec,
    fit: tuple[Any, Any],
    calibration: tuple[Any, Any],
    seed: int,
    as_of: str,
) -> Any:
    """The fitted pipeline: the booster fitted on ``fit`` (frame, labels), its isotonic calibration
    on ``calibration`` - rows the booster never saw, so the probabilities are honest for CBPE."""
    _sklearn()
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    unfitted = build_pipeline(spec, seed, as_of)
    features, booster = unfitted.named_steps["features"], unfitted.named_steps["model"]
    (fit_frame, fit_labels), (calibration_frame, calibration_labels) = fit, calibration
    with threads_for(len(fit_frame)):
        booster.fit(features.fit_transform(fit_frame[spec.columns]), fit_labels)
        calibrated = CalibratedClassifierCV(FrozenEstimator(booster), method="isotonic")
        calibrated.fit(features.transform(calibration_frame[spec.columns]), calibration_labels)
    return Pipeline([("features", features), ("model", calibrated)])


def booster_of(pipeline: Any) -> Any:
    """The gradient boosting model inside the pipeline (under calibration and freezing)."""
    model = pipeline.named_steps["model"]
    while hasattr(model, "estimator"):
        model = model.estimator
    return model


def hyperparameters(pipeline: Any) -> dict[str, Any]:
    """The booster's parameters worth logging."""
    booster = booster_of(pipeline)
    keys = ("learning_rate", "max_iter", "max_leaf_nodes", "min_samples_leaf", "l2_regularization", "random_state")
    params = {key: booster.get_params()[key] for key in keys}
    calibrated = booster is not pipeline.named_steps["model"]
    params["calibration"] = f"isotonic, {CALIBRATION_SHARE:.0%} of the training split" if calibrated else "none"
    return params


def known_categories(model: Any) -> dict[str, list[Any]]:
    """The categories each categorical input of a fitted model learned (missing values aside):
    any other value is scored as an unknown category."""
    if hasattr(model, "raw_scores"):  # a CompiledScorer
        return dict(zip(model.categorical, model.categories, strict=True))
    features = model.named_steps["features"]
    for name, transformer, columns in features.transformers_:
        if name == "categories":
            return {
                column: [value for value in values if not (isinstance(value, float) and value != value)]
                for column, values in zip(columns, transformer.categories_, strict=True)
            }
    return {}


def predict_probabilities(pipeline: Any, frame: Any) -> np.ndarray:
    """Churn probabilities (float64) of a frame holding the model's input columns: a pandas frame
    for a scikit-learn pipeline; pandas or polars for the model's array form."""
    if hasattr(pipeline, "raw_scores"):  # a CompiledScorer: no scikit-learn involved
        return pipeline.predict(frame)
    if not hasattr(frame, "iloc"):
        frame = frame.to_pandas()
    with threads_for(len(frame)):
        return np.asarray(pipeline.predict_proba(frame)[:, 1], dtype=np.float64)


def permutation_importance(
    pipeline: Any, frame: Any, labels: Any, spec: FeatureSpec, seed: int
) -> tuple[dict[str, float], str]:
    """Mean drop of ROC-AUC when each input column is shuffled, and how it was measured.

    scikit-learn's permutation importance, on a stratified sample of at most
    :data:`IMPORTANCE_ROWS` rows, with the columns prepared once: shuffling an input column
    and shuffling its prepared column (one-to-one) give the same predictions, without redoing
    the encoding and the date parsing for every shuffle.
    """
    _sklearn()
    from sklearn.inspection import permutation_importance as sk_permutation_importance
    from sklearn.model_selection import train_test_split

    if len(frame) > IMPORTANCE_ROWS:
        frame, _, labels, _ = train_test_split(
            frame, labels, train_size=IMPORTANCE_ROWS, stratify=labels, random_state=seed
        )
    features, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
    prepared = features.transform(frame[spec.columns])
    with threads_for(len(frame)):
        result = sk_permutation_importance(
            model, prepared, labels, scoring="roc_auc", n_repeats=IMPORTANCE_REPEATS, random_state=seed, n_jobs=1
        )
    names = list(features.get_feature_names_out())
    importance = {name: float(value) for name, value in zip(names, result.importances_mean, strict=True)}
    method = f"permutation (ROC-AUC drop), {len(frame):,} validation rows, {IMPORTANCE_REPEATS} repeats"
    return dict(sorted(importance.items(), key=lambda item: -item[1])), method
