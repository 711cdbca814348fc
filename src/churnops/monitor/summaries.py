"""Descriptive summaries and shared-bin distributions of prepared samples."""

from __future__ import annotations

from typing import Any

import numpy as np

from churnops.monitor.prepare import CategoricalSample, NumericalSample
from churnops.monitor.results import ColumnSummary, Distribution

QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
TOP_CATEGORIES = 30
HISTOGRAM_BINS = 30
OTHER = "(other)"


def label_text(label: Any) -> str:
    """How a category label is written in results (``None`` never appears: missing is dropped)."""
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def numerical_summary(sample: NumericalSample) -> ColumnSummary:
    """Count, missing, mean, std (ddof=1), extremes and quantiles of a numerical sample.

    >>> s = numerical_summary(NumericalSample(np.array([1.0, 2.0, 3.0]), 4, 1, 0))
    >>> s.mean, s.quantiles["p50"], s.missing
    (2.0, 2.0, 1)
    """
    values = sample.values
    if values.size == 0:
        return ColumnSummary(sample.rows, 0, sample.missing, sample.infinite, sample.unparsable)
    quantiles = np.quantile(values, list(QUANTILES.values()))
    return ColumnSummary(
        rows=sample.rows,
        count=int(values.size),
        missing=sample.missing,
        infinite=sample.infinite,
        unparsable=sample.unparsable,
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        min=float(values[0]),
        max=float(values[-1]),
        quantiles={name: float(q) for name, q in zip(QUANTILES, quantiles, strict=True)},
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


def numerical_distribution(reference: np.ndarray, current: np.ndarray) -> Distribution | None:
    """Both samples on the same equal-width bins, spanning the 0.5%-99.5% range of both.

    Values beyond that range are counted in the outer bins, so the shares add up to one.
    """
    if reference.size == 0 or current.size == 0:
        return None
    low = min(np.quantile(reference, 0.005), np.quantile(current, 0.005))
    high = max(np.quantile(reference, 0.995), np.quantile(current, 0.995))
    if high <= low:
        low, high = min(reference[0], current[0]), max(reference[-1], current[-1])
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    ref_counts = np.histogram(np.clip(reference, low, high), edges)[0]
    cur_counts = np.histogram(np.clip(current, low, high), edges)[0]
    labels = [f"{edges[i]:.6g} - {edges[i + 1]:.6g}" for i in range(HISTOGRAM_BINS)]
    return Distribution(
        kind="bins",
        labels=labels,
        reference=(ref_counts / reference.size).tolist(),
        current=(cur_counts / current.size).tolist(),
        edges=edges.tolist(),
    )


def categorical_distribution(ref_codes: np.ndarray, cur_codes: np.ndarray, labels: list[Any]) -> Distribution | None:
    """Shares per category (both samples), the most frequent first, the tail grouped."""
    if ref_codes.size == 0 or cur_codes.size == 0:
        return None
    k = len(labels)
    ref = np.bincount(ref_codes, minlength=k) / ref_codes.size
    cur = np.bincount(cur_codes, minlength=k) / cur_codes.size
    order = np.argsort(-np.maximum(ref, cur), kind="stable")
    top, rest = order[:TOP_CATEGORIES], order[TOP_CATEGORIES:]
    names = [label_text(labels[i]) for i in top]
    ref_list, cur_list = ref[top].tolist(), cur[top].tolist()
    if rest.size:
        names.append(OTHER)
        ref_list.append(float(ref[rest].sum()))
        cur_list.append(float(cur[rest].sum()))
    return Distribution(kind="categories", labels=names, reference=ref_list, current=cur_list)
