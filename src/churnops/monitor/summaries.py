"""Descriptive summaries and shared-bin distributions of prepared samples."""

from __future__ import annotations

from typing import Any

import numpy as np

from churnops.monitor.prepare import LABEL_KEY, MAX_LABEL_CHARS, CategoricalSample, NumericalSample, label_key
from churnops.monitor.results import ColumnSummary, Distribution

QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
TOP_CATEGORIES = 30
HISTOGRAM_BINS = 30
OTHER = "(other)"


def label_text(label: Any) -> str:
    """How a category label is written in results (``None`` never appears: missing is dropped).

    A label over :data:`~churnops.monitor.prepare.MAX_LABEL_CHARS` characters is written as its
    first 80 characters, its length and 10 hex digits of its sha1 - from the label itself or from
    the :func:`~churnops.monitor.prepare.label_key` the monitoring keeps instead of it.

    >>> label_text(3.0), label_text("x" * 200)[:5], label_text("x" * 200)[-31:]
    ('3', 'xxxxx', '... (200 chars, sha1 94218caae9)')
    >>> label_text(label_key("x" * 200)) == label_text("x" * 200)
    True
    """
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    text = str(label)
    if len(text) <= MAX_LABEL_CHARS:
        return text
    key = LABEL_KEY.fullmatch(text)
    if key is None:
        key = LABEL_KEY.fullmatch(label_key(text))
        assert key is not None
    prefix, length, digest = key.groups()
    return f"{prefix}... ({length} chars, sha1 {digest[:10]})"


def sorted_quantiles(values: np.ndarray, weights: np.ndarray | None, probabilities: list[float]) -> list[float]:
    """numpy's default (linear) quantiles of a sorted sample, also when it comes as values + counts.

    >>> sorted_quantiles(np.array([1.0, 2.0, 10.0]), np.array([2, 1, 1]), [0.5, 0.75])
    [1.5, 4.0]
    >>> [float(q) for q in np.quantile([1.0, 1.0, 2.0, 10.0], [0.5, 0.75])]
    [1.5, 4.0]
    """
    if weights is None:
        n = values.size

        def at(i: np.ndarray) -> np.ndarray:
            return values[i]
    else:
        cumulative = np.cumsum(weights)
        n = int(cumulative[-1])

        def at(i: np.ndarray) -> np.ndarray:
            return values[np.searchsorted(cumulative, i, side="right")]

    position = (n - 1) * np.asarray(probabilities)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    fraction = position - low
    low_values, high_values = at(low), at(high)
    return [float(v) for v in low_values + fraction * (high_values - low_values)]


def numerical_summary(sample: NumericalSample) -> ColumnSummary:
    """Count, missing, mean, std (ddof=1), extremes and quantiles of a numerical sample.

    >>> s = numerical_summary(NumericalSample(np.array([1.0, 2.0, 3.0]), 4, 1, 0))
    >>> s.mean, s.quantiles["p50"], s.missing
    (2.0, 2.0, 1)
    """
    values, weights = sample.values, sample.weights
    count = sample.count
    if count == 0:
        return ColumnSummary(sample.rows, 0, sample.missing, sample.infinite, sample.unparsable)
    with np.errstate(over="ignore", invalid="ignore"):  # values near 1e308: the spread is reported as unknown
        mean = float(np.average(values, weights=weights))
        squares = float(np.sum((values - mean) ** 2 * (weights if weights is not None else 1)))
    return ColumnSummary(
        rows=sample.rows,
        count=count,
        missing=sample.missing,
        infinite=sample.infinite,
        unparsable=sample.unparsable,
        mean=mean,
        std=float(np.sqrt(squares / (count - 1))) if count > 1 else 0.0,
        min=sample.low,
        max=sample.high,
        quantiles=dict(zip(QUANTILES, sorted_quantiles(values, weights, list(QUANTILES.values())), strict=True)),
    )


def categorical_summary(sample: CategoricalSample) -> ColumnSummary:
    """Count, missing, number of categories and the top category shares."""
    counts = sample.counts
    total = int(counts.sum())
    order = np.argsort(-counts, kind="stable")
    shares = {label_text(sample.labels[i]): counts[i] / total for i in order[:TOP_CATEGORIES]}
    if len(order) > TOP_CATEGORIES:
        shares[OTHER] = float(counts[order[TOP_CATEGORIES:]].sum() / total)
    return ColumnSummary(
        rows=sample.rows,
        count=total,
        missing=sample.missing,
        unparsable=sample.unparsable,
        n_categories=len(sample.labels),
        shares={k: float(v) for k, v in shares.items()},
    )


def summarize(sample: NumericalSample | CategoricalSample) -> ColumnSummary:
    if isinstance(sample, NumericalSample):
        return numerical_summary(sample)
    return categorical_summary(sample)


def numerical_distribution(reference: NumericalSample, current: NumericalSample) -> Distribution | None:
    """Both samples on the same equal-width bins, spanning the 0.5%-99.5% range of both.

    Values beyond that range are counted in the outer bins, so the shares add up to one.
    """
    if reference.count == 0 or current.count == 0:
        return None
    ref_low, ref_high = sorted_quantiles(reference.values, reference.weights, [0.005, 0.995])
    cur_low, cur_high = sorted_quantiles(current.values, current.weights, [0.005, 0.995])
    low, high = min(ref_low, cur_low), max(ref_high, cur_high)
    if high <= low:
        low = min(reference.low, current.low)
        high = max(reference.high, current.high)
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    ref_counts = np.histogram(np.clip(reference.values, low, high), edges, weights=reference.weights)[0]
    cur_counts = np.histogram(np.clip(current.values, low, high), edges, weights=current.weights)[0]
    labels = [f"{edges[i]:.6g} - {edges[i + 1]:.6g}" for i in range(HISTOGRAM_BINS)]
    return Distribution(
        kind="bins",
        labels=labels,
        reference=(ref_counts / reference.count).tolist(),
        current=(cur_counts / current.count).tolist(),
        edges=edges.tolist(),
    )


def categorical_distribution(ref_counts: np.ndarray, cur_counts: np.ndarray, labels: list[Any]) -> Distribution | None:
    """Shares per category (both samples), the most frequent first, the tail grouped."""
    if ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return None
    ref = ref_counts / ref_counts.sum()
    cur = cur_counts / cur_counts.sum()
    order = np.argsort(-np.maximum(ref, cur), kind="stable")
    top, rest = order[:TOP_CATEGORIES], order[TOP_CATEGORIES:]
    names = [label_text(labels[i]) for i in top]
    ref_list, cur_list = ref[top].tolist(), cur[top].tolist()
    if rest.size:
        names.append(OTHER)
        ref_list.append(float(ref[rest].sum()))
        cur_list.append(float(cur[rest].sum()))
    return Distribution(kind="categories", labels=names, reference=ref_list, current=cur_list)
