"""Classifier performance: realized metrics with labels, and CBPE estimates without them.

CBPE (confidence-based performance estimation, as NannyML does it): when the model's
probabilities are calibrated, each row is expected to be positive with its predicted
probability ``p``. The expected confusion matrix at any threshold follows - expected true
positives above the threshold are the sum of ``p``, expected false positives the sum of
``1 - p`` - and with it an expected ROC curve and its area. It holds under covariate shift
(the inputs move, ``P(churn | inputs)`` does not), which is what it is validated on; concept
drift breaks it, and then only labels tell.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from churnops.monitor.binning import distinct, run_starts

FloatArray = NDArray[np.float64]


def roc_auc(labels: NDArray[np.integer], scores: FloatArray) -> float:
    """Area under the ROC curve (ties count half), from ranks - no scikit-learn needed.

    >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    labels = np.asarray(labels).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = np.asarray(scores)[order]
    # average ranks over ties
    starts = run_starts(sorted_scores)
    ends = np.append(starts[1:], len(scores))
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(labels: NDArray[np.integer], scores: FloatArray) -> float:
    """Area under the precision-recall curve, as a step function (scikit-learn's definition)."""
    labels = np.asarray(labels).astype(bool)
    if labels.sum() == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    sorted_scores, sorted_labels = np.asarray(scores)[order], labels[order]
    last = np.flatnonzero(np.concatenate((sorted_scores[1:] != sorted_scores[:-1], [True])))
    true_positives = np.cumsum(sorted_labels)[last]
    predicted = last + 1
    precision = true_positives / predicted
    recall = true_positives / labels.sum()
    recall_steps = np.diff(np.concatenate(([0.0], recall)))
    return float(np.sum(recall_steps * precision))


def classification_metrics(
    labels: NDArray[np.integer], probabilities: FloatArray, threshold: float
) -> dict[str, float]:
    """ROC-AUC, PR-AUC, F1, precision and recall at ``threshold``, Brier score, positive rate."""
    labels = np.asarray(labels).astype(int)
    predicted = probabilities >= threshold
    true_positive = int(np.sum(predicted & (labels == 1)))
    precision = true_positive / max(int(predicted.sum()), 1)
    recall = true_positive / max(int(labels.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "roc_auc": roc_auc(labels, probabilities),
        "pr_auc": average_precision(labels, probabilities),
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "brier": float(np.mean((probabilities - labels) ** 2)),
        "positive_rate": float(labels.mean()),
        "rows": int(labels.size),
    }


def best_f1_threshold(labels: NDArray[np.integer], probabilities: FloatArray) -> float:
    """The probability threshold with the best F1 score (ties: the highest threshold).

    >>> best_f1_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.9]))
    0.7
    """
    candidates = distinct(probabilities)
    best, best_f1 = 0.5, -1.0
    labels = np.asarray(labels).astype(int)
    order = np.argsort(-probabilities, kind="mergesort")
    sorted_p, sorted_y = probabilities[order], labels[order]
    true_positives = np.cumsum(sorted_y)
    positives = labels.sum()
    for threshold in candidates:
        count = int(np.searchsorted(-sorted_p, -threshold, side="right"))
        if count == 0:
            continue
        tp = true_positives[count - 1]
        precision, recall = tp / count, tp / max(positives, 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if f1 >= best_f1:
            best, best_f1 = float(threshold), f1
    return best


def estimated_roc_auc(probabilities: FloatArray) -> float:
    """CBPE's expected ROC-AUC from calibrated probabilities alone (no labels).

    >>> round(estimated_roc_auc(np.array([0.0, 0.0, 1.0, 1.0])), 6)
    1.0
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    expected_positives, expected_negatives = p.sum(), (1 - p).sum()
    if expected_positives <= 0 or expected_negatives <= 0:
        return float("nan")
    order = np.argsort(-p, kind="mergesort")
    sorted_p = p[order]
    last = np.flatnonzero(np.concatenate((sorted_p[1:] != sorted_p[:-1], [True])))  # one point per threshold
    tpr = np.concatenate(([0.0], np.cumsum(sorted_p)[last] / expected_positives))
    fpr = np.concatenate(([0.0], np.cumsum(1 - sorted_p)[last] / expected_negatives))
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def estimated_metrics(probabilities: FloatArray, threshold: float) -> dict[str, float]:
    """CBPE estimates: ROC-AUC, and the expected precision/recall/F1 at ``threshold``."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    predicted = p >= threshold
    expected_tp = float(p[predicted].sum())
    expected_positives = float(p.sum())
    precision = expected_tp / max(int(predicted.sum()), 1)
    recall = expected_tp / expected_positives if expected_positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "roc_auc": estimated_roc_auc(p),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "positive_rate": float(p.mean()),
        "rows": int(p.size),
    }


def _midranks(values: FloatArray) -> FloatArray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def roc_auc_with_variance(labels: NDArray[np.integer], scores: FloatArray) -> tuple[float, float]:
    """ROC-AUC and its variance by DeLong et al. (1988): from each positive's and each negative's
    share of the pairs it wins (ties count half).

    >>> auc, variance = roc_auc_with_variance(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> auc, round(variance, 6)
    (0.75, 0.125)
    """
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = positives.size, negatives.size
    if m < 2 or n < 2:
        return float("nan"), float("nan")
    pooled = _midranks(np.concatenate([positives, negatives]))
    wins = (pooled[:m] - _midranks(positives)) / n  # each positive: share of negatives below it
    losses = 1.0 - (pooled[m:] - _midranks(negatives)) / m  # each negative: share of positives above it
    return float(wins.mean()), float(wins.var(ddof=1) / m + losses.var(ddof=1) / n)


def compare_auc(first: tuple[float, float], second: tuple[float, float]) -> dict[str, float]:
    """Difference of two ROC-AUCs measured on different customers (each with its DeLong
    variance): the difference, its z score and two-sided p-value.

    >>> compare_auc((0.80, 0.0004), (0.75, 0.0005))["p_value"] < 0.1
    True
    >>> compare_auc((0.0, 0.0), (1.0, 0.0))["p_value"], compare_auc((1.0, 0.0), (1.0, 0.0))["p_value"]
    (0.0, 1.0)
    """
    import math

    difference = second[0] - first[0]
    spread = math.sqrt(first[1] + second[1])
    # both ROC-AUCs without spread (perfectly ranked, or all wrong): any difference is certain
    certain = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    z = difference / spread if spread > 0 else certain
    return {"difference": difference, "z": z, "p_value": math.erfc(abs(z) / math.sqrt(2.0))}
