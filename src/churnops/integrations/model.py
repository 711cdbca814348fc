"""The churn classifier: a scikit-learn pipeline of feature preparation and gradient boosting.

Numbers pass through (histogram gradient boosting handles missing values itself), categories
are ordinal-encoded (unknown categories become missing), dates become ages in years as of a date
fixed at training time. Probabilities are calibrated (isotonic, cross-fitted) so that CBPE can
estimate performance without labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from churnops.errors import MissingDependencyError

DAYS_PER_YEAR = 365.25
SKOPS_TRUSTED_TYPES = [
    "churnops.integrations.model._ages",
    "functools.partial",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]
"""Types the model's skops file may hold (MLflow saves scikit-learn models with skops, not pickle)."""


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


def build_pipeline(spec: FeatureSpec, seed: int, as_of: str | None = None, calibrate: bool = True) -> Any:
    """The unfitted scikit-learn pipeline."""
    _sklearn()
    from sklearn.calibration import CalibratedClassifierCV
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
    model = CalibratedClassifierCV(booster, method="isotonic", cv=3) if calibrate else booster
    return Pipeline([("features", features), ("model", model)])


def hyperparameters(pipeline: Any) -> dict[str, Any]:
    """The booster's parameters worth logging."""
    model = pipeline.named_steps["model"]
    booster = getattr(model, "estimator", model)
    keys = ("learning_rate", "max_iter", "max_leaf_nodes", "min_samples_leaf", "l2_regularization", "random_state")
    params = {key: booster.get_params()[key] for key in keys}
    params["calibration"] = "isotonic, 3-fold" if booster is not model else "none"
    return params


def permutation_importance(pipeline: Any, frame: Any, labels: Any, spec: FeatureSpec, seed: int) -> dict[str, float]:
    """Mean drop of ROC-AUC when each input column is shuffled (scikit-learn's permutation importance)."""
    _sklearn()
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    result = sk_permutation_importance(
        pipeline, frame[spec.columns], labels, scoring="roc_auc", n_repeats=5, random_state=seed, n_jobs=1
    )
    importance = {name: float(value) for name, value in zip(spec.columns, result.importances_mean, strict=True)}
    return dict(sorted(importance.items(), key=lambda item: -item[1]))
