"""Multivariate drift: changes in how the columns go together, which no per-column test sees.

Opt-in with ``[drift] multivariate = true`` (``--multivariate``). Both datasets contribute a
sample of whole rows (at most ``drift.multivariate_rows`` each, default 5,000), drawn through the
hash of their values so that it does not depend on how the file was cut into chunks or
partitions and merges across them (see :class:`RowSampler`). Two detectors then look at those rows:

* **Domain classifier.** Gradient-boosted trees (scikit-learn's ``HistGradientBoostingClassifier``)
  learn to tell batch rows from reference rows; each row is scored by a model that did not see it
  (5-fold cross-validation), and the ROC-AUC of those scores says how separable the two are
  (0.5: not at all). With no drift the out-of-fold scores are unrelated to the rows' origin, so
  the AUC follows the Mann-Whitney null distribution; its p-value comes from it. The columns whose
  shuffling costs the classifier the most AUC (permutation importance) are the ones that
  separate the batch from the reference.
* **PCA reconstruction error.** Principal components keeping 65% of the variance of the
  standardised reference (categories one-hot encoded) are fitted on one half of the reference
  rows; the other half and the batch are projected and rebuilt. When the columns stop moving
  together as they did, the batch rebuilds worse: the one-sided Mann-Whitney test compares the
  batch's errors with the held-out reference half's.

Each detector alarms when its p-value is at most ``drift.fdr / 2`` (the two together keep the
false-alarm rate at ``fdr``) and its effect is large enough: an AUC of at least
:data:`MIN_AUC`, a reconstruction error at least :data:`MIN_ERROR_RATIO` times the reference's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from churnops.errors import ConfigError
from churnops.monitor.binning import distinct
from churnops.monitor.results import clean_number

HASH_SEED = 20261204
MIN_AUC = 0.55
MIN_ERROR_RATIO = 1.01
PCA_VARIANCE = 0.65
FOLDS = 5
MIN_ROWS = 50
"""Fewer sampled rows on either side: the detectors do not run (said in the JSON)."""
KEY = "__churnops_key"
COUNT = "__churnops_count"


def mixed(keys: pl.Series) -> pl.Series:
    """Row hashes made uniform in every bit (SplitMix64's finalizer, a bijection of 64-bit words).

    Polars' row hash is made for joins, not sampling: its order follows the values of the last
    column (the rows with the smallest hashes held twice as many of some of its categories), so
    the smallest hashes of 10% of one table and of 50% of another were samples that differ - and
    the multivariate detectors alarmed on data that had not changed.
    """
    h = keys.to_numpy().astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return pl.Series(keys.name, h, dtype=pl.UInt64)


class RowSampler:
    """A sample of ``size`` rows of a table that does not depend on how it was cut into chunks.

    Distinct rows (as text) are ranked by a hash of their values, and the ``size`` with the
    smallest hash are kept with how often each occurs: a uniform choice among the table's distinct
    rows, and the exact count of each one kept (a row kept in the end is kept in every chunk it
    occurs in). :meth:`finish` turns them into ``size`` rows in proportion to those counts, so a
    table of a few value combinations repeated thousands of times is sampled as it is, not as the
    copies of the first few combinations. Fed chunk by chunk (polars DataFrames or Arrow record
    batches); :meth:`merge` joins samplers fed with other rows of the same table.
    """

    def __init__(self, columns: list[str], size: int) -> None:
        self.columns = list(columns)
        self.size = size
        self.rows: pl.DataFrame | None = None

    def update(self, chunk: Any) -> None:
        frame = chunk if isinstance(chunk, pl.DataFrame) else pl.from_arrow(chunk)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.select(self.columns).with_columns(pl.all().cast(pl.String))
        keys = mixed(frame.hash_rows(seed=HASH_SEED))
        if self.rows is not None and self.rows.height >= self.size:
            keep = keys <= self.rows[KEY].max()
            if not keep.any():
                return
            frame, keys = frame.filter(keep), keys.filter(keep)
        self._add(frame.with_columns(keys.alias(KEY), pl.lit(1, pl.UInt64).alias(COUNT)))

    def _add(self, part: pl.DataFrame) -> None:
        rows = part if self.rows is None else pl.concat([self.rows, part])
        rows = rows.group_by(KEY, maintain_order=True).agg(
            *(pl.col(c).first() for c in self.columns), pl.col(COUNT).sum()
        )
        if rows.height > 2 * self.size:
            rows = rows.sort(KEY).head(self.size)
        self.rows = rows.select(*self.columns, KEY, COUNT)

    def merge(self, other: RowSampler) -> None:
        if other.rows is not None:
            self._add(other.rows)

    def finish(self) -> pl.DataFrame:
        if self.rows is None:
            return pl.DataFrame({name: [] for name in self.columns}, schema=dict.fromkeys(self.columns, pl.String))
        kept = self.rows.sort(KEY).head(self.size)
        counts = kept[COUNT].to_numpy().astype(np.float64)
        total = min(self.size, int(counts.sum()))
        share = counts * total / counts.sum()
        copies = np.floor(share).astype(np.int64)
        short = total - int(copies.sum())  # largest remainders first, ties by rank
        if short > 0:
            copies[np.argsort(-(share - copies), kind="stable")[:short]] += 1
        return kept.drop(KEY, COUNT).select(pl.all().repeat_by(pl.Series(copies)).explode())


@dataclass(frozen=True)
class JointSample:
    """Sampled rows, encoded: each number (and date, in days) as floats with NaN for missing,
    each category as codes into its labels (-1 for missing)."""

    rows: int
    numbers: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    categories: dict[str, tuple[list[str], NDArray[np.int32]]] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [*self.numbers, *self.categories]


def encode(rows: pl.DataFrame, kinds: dict[str, str], date_formats: dict[str, str] | None = None) -> JointSample:
    """Encode sampled rows (text) by column kind (``numerical``, ``datetime``, ``categorical``);
    dates are read as ``date_formats`` says for their column."""
    from churnops.monitor.prepare import coerce_datetime, coerce_numerical

    numbers: dict[str, NDArray[np.float64]] = {}
    categories: dict[str, tuple[list[str], NDArray[np.int32]]] = {}
    for name, kind in kinds.items():
        if name not in rows.columns:
            continue
        series = rows[name]
        if kind == "categorical":
            labels = sorted(series.drop_nulls().unique().to_list())
            position = {label: i for i, label in enumerate(labels)}
            codes = np.array([position.get(v, -1) if v is not None else -1 for v in series.to_list()], np.int32)
            categories[name] = (labels, codes)
        else:
            if kind == "datetime":
                coerced = coerce_datetime(series, (date_formats or {}).get(name))
            else:
                coerced = coerce_numerical(series)
            values = coerced.series.cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
            values[~np.isfinite(values)] = np.nan
            numbers[name] = values
    return JointSample(rows.height, numbers, categories)


@dataclass(frozen=True)
class Detector:
    """One multivariate detector's finding."""

    name: str
    statistic: float
    """ROC-AUC (domain classifier) or the ratio of mean reconstruction errors (PCA)."""
    p_value: float
    threshold: float
    """The p-value at or under which it alarms (``fdr / 2``)."""
    min_effect: float
    drift_detected: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": clean_number(self.statistic),
            "p_value": clean_number(self.p_value),
            "threshold": self.threshold,
            "min_effect": self.min_effect,
            "drift_detected": self.drift_detected,
            **self.details,
        }


@dataclass(frozen=True)
class Multivariate:
    """Both detectors' findings (None when a detector could not run, with the reason)."""

    reference_rows: int
    current_rows: int
    columns: list[str]
    domain_classifier: Detector | None
    pca_reconstruction: Detector | None
    reason: str | None = None
    seconds: float = 0.0

    @property
    def detected(self) -> list[Detector]:
        return [d for d in (self.domain_classifier, self.pca_reconstruction) if d is not None and d.drift_detected]

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "columns": list(self.columns),
            "reason": self.reason,
            "domain_classifier": self.domain_classifier.to_dict() if self.domain_classifier else None,
            "pca_reconstruction": self.pca_reconstruction.to_dict() if self.pca_reconstruction else None,
            "drift_detected": bool(self.detected),
        }


def require_sklearn() -> None:
    """One line naming the extra when scikit-learn is missing."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError(
            "drift.multivariate needs scikit-learn: pip install 'churnops[mlflow]' (or scikit-learn)"
        ) from None


def _matrices(
    reference: JointSample, current: JointSample
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str], list[bool]]:
    """Both samples on the same columns: numbers as they are, categories as codes into the union
    of both samples' labels (NaN for missing); which columns are categories."""
    names: list[str] = []
    kinds: list[bool] = []
    ref_cols: list[NDArray[np.float64]] = []
    cur_cols: list[NDArray[np.float64]] = []
    for name, values in reference.numbers.items():
        if name in current.numbers:
            names.append(name)
            kinds.append(False)
            ref_cols.append(values)
            cur_cols.append(current.numbers[name])
    for name, (labels, codes) in reference.categories.items():
        if name not in current.categories:
            continue
        cur_labels, cur_codes = current.categories[name]
        position = _category_positions(labels, codes, cur_labels, cur_codes)

        def recode(
            labels: list[str], codes: NDArray[np.int32], position: dict[str, float] = position
        ) -> NDArray[np.float64]:
            table = np.array([position[label] for label in labels] + [np.nan], dtype=np.float64)
            return table[np.where(codes < 0, len(labels), codes)]

        names.append(name)
        kinds.append(True)
        ref_cols.append(recode(labels, codes))
        cur_cols.append(recode(cur_labels, cur_codes))
    if not names:
        return np.empty((reference.rows, 0)), np.empty((current.rows, 0)), names, kinds
    return np.column_stack(ref_cols), np.column_stack(cur_cols), names, kinds


MAX_CATEGORIES = 255
"""Categories the gradient-boosted trees take per column (scikit-learn's limit): the most
frequent keep their own code, the rest share the last one."""


def _category_positions(
    labels: list[str], codes: NDArray[np.int32], cur_labels: list[str], cur_codes: NDArray[np.int32]
) -> dict[str, float]:
    """Each label's code in the union of both samples; beyond :data:`MAX_CATEGORIES` labels, the
    rarest (over both samples) share the code ``MAX_CATEGORIES - 1``."""
    counts: dict[str, int] = {}
    for names, found in ((labels, codes), (cur_labels, cur_codes)):
        tally = np.bincount(found[found >= 0], minlength=len(names))
        for label, count in zip(names, tally.tolist(), strict=True):
            counts[label] = counts.get(label, 0) + int(count)
    union = sorted(counts)
    if len(union) > MAX_CATEGORIES:
        union = sorted(union, key=lambda label: (-counts[label], label))
    return {label: float(min(i, MAX_CATEGORIES - 1)) for i, label in enumerate(union)}


def mann_whitney_auc_p(auc: float, n_reference: int, n_current: int) -> float:
    """One-sided p-value of an AUC above 0.5 under no difference (normal approximation).

    >>> round(mann_whitney_auc_p(0.5, 1000, 1000), 3)
    0.5
    """
    sd = math.sqrt((n_reference + n_current + 1) / (12.0 * n_reference * n_current))
    return 0.5 * math.erfc((auc - 0.5) / sd / math.sqrt(2.0))


def domain_classifier(
    x_ref: NDArray[np.float64], x_cur: NDArray[np.float64], names: list[str], categorical: list[bool], alpha: float
) -> Detector:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    x = np.vstack([x_ref, x_cur])
    y = np.concatenate([np.zeros(len(x_ref), np.int8), np.ones(len(x_cur), np.int8)])
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=0)
    scores = np.empty(len(y))
    importance = np.zeros(len(names))
    mask = np.array(categorical, dtype=bool) if any(categorical) else None
    for number, (train, test) in enumerate(folds.split(x, y)):
        model = HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.1, categorical_features=mask, random_state=0
        ).fit(x[train], y[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
        if number == 0:  # which columns separate: measured on one held-out fold
            found = permutation_importance(model, x[test], y[test], scoring="roc_auc", n_repeats=3, random_state=0)
            importance = found.importances_mean
    auc = float(roc_auc_score(y, scores))
    p_value = mann_whitney_auc_p(auc, len(x_ref), len(x_cur))
    order = np.argsort(-importance)
    top = [{"column": names[i], "auc_drop": float(importance[i])} for i in order[:5] if importance[i] > 0]
    return Detector(
        "domain_classifier",
        auc,
        p_value,
        alpha,
        MIN_AUC,
        p_value <= alpha and auc >= MIN_AUC,
        {"roc_auc": auc, "folds": FOLDS, "separating_columns": top},
    )


def pca_reconstruction(
    x_ref: NDArray[np.float64], x_cur: NDArray[np.float64], categorical: list[bool], alpha: float
) -> Detector:
    from scipy import stats
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    order = rng.permutation(len(x_ref))
    fit_rows, held_rows = order[: len(order) // 2], order[len(order) // 2 :]

    def design(x: NDArray[np.float64], basis: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        parts = []
        for j, is_category in enumerate(categorical):
            column = x[:, j]
            if is_category:
                levels = distinct(x_ref[fit_rows, j][~np.isnan(x_ref[fit_rows, j])])
                parts.append((column[:, None] == levels[None, :]).astype(np.float64))
            else:
                parts.append(column[:, None])
        return np.hstack(parts) if parts else np.empty((len(x), 0))

    fit = design(x_ref[fit_rows])
    centre = np.nanmean(fit, axis=0)
    scale = np.nanstd(fit, axis=0)
    scale[~(scale > 0)] = 1.0

    def standard(x: NDArray[np.float64]) -> NDArray[np.float64]:
        z = (design(x) - centre) / scale
        return np.where(np.isnan(z), 0.0, z)

    pca = PCA(n_components=PCA_VARIANCE, svd_solver="full", random_state=0).fit(standard(x_ref[fit_rows]))

    def errors(x: NDArray[np.float64]) -> NDArray[np.float64]:
        z = standard(x)
        rebuilt = pca.inverse_transform(pca.transform(z))
        return np.sqrt(((z - rebuilt) ** 2).sum(axis=1))

    held, batch = errors(x_ref[held_rows]), errors(x_cur)
    if held.mean() <= 1e-12 and batch.mean() <= 1e-12:
        # the components rebuild every row (one column, or columns that are copies of each
        # other): nothing is left to compare
        ratio, p_value = 1.0, 1.0
    else:
        ratio = float(batch.mean() / held.mean()) if held.mean() > 0 else float("inf")
        p_value = float(stats.mannwhitneyu(batch, held, alternative="greater").pvalue)
    return Detector(
        "pca_reconstruction",
        ratio,
        p_value,
        alpha,
        MIN_ERROR_RATIO,
        p_value <= alpha and ratio >= MIN_ERROR_RATIO,
        {
            "error_ratio": clean_number(ratio),
            "reference_error": float(held.mean()),
            "current_error": float(batch.mean()),
            "components": int(pca.n_components_),
        },
    )


def multivariate_drift(reference: JointSample, current: JointSample, fdr: float) -> Multivariate:
    """Both detectors on the two samples (each at ``fdr / 2``)."""
    started = time.perf_counter()
    x_ref, x_cur, names, categorical = _matrices(reference, current)
    if not names or min(len(x_ref), len(x_cur)) < MIN_ROWS:
        reason = "no column tested on both sides" if not names else f"fewer than {MIN_ROWS} rows sampled on one side"
        return Multivariate(reference.rows, current.rows, names, None, None, reason, time.perf_counter() - started)
    alpha = fdr / 2
    classifier = domain_classifier(x_ref, x_cur, names, categorical, alpha)
    pca = pca_reconstruction(x_ref, x_cur, categorical, alpha)
    return Multivariate(len(x_ref), len(x_cur), names, classifier, pca, None, time.perf_counter() - started)
