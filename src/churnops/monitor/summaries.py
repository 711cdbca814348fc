"""Descriptive summaries and shared-bin distributions of prepared samples."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from churnops.monitor.binning import distinct, sorted_histogram
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


LONG_TAIL = 0.25
"""A tail beyond the 0.5%-99.5% quantiles longer than this share of the span between them gets an
outer bin of its own instead of stretching every bin."""


def integer_valued(sample: NumericalSample) -> bool:
    """Whether every value is a whole number (within a streaming sketch's error when approximate).

    >>> integer_valued(NumericalSample(np.array([1.0, 2.0, 5.0]), 3, 0, 0))
    True
    >>> integer_valued(NumericalSample(np.array([1.0, 2.5]), 2, 0, 0))
    False
    """
    if sample.count == 0 or not (float(sample.low).is_integer() and float(sample.high).is_integer()):
        return False
    if max(abs(sample.low), abs(sample.high)) >= 2**53:  # beyond exact float integers: plain bins
        return False
    values = sample.values
    tolerance = sample.relative_error * max(abs(sample.low), abs(sample.high))
    if tolerance >= 0.5:  # a sketch too coarse to tell integers apart
        return False
    return bool(np.all(np.abs(values - np.round(values)) <= tolerance))


def histogram_edges(low: float, high: float, core_low: float, core_high: float, integer: bool) -> np.ndarray:
    """Bin edges from ``low`` to ``high``: equal bins over the core, one outer bin per long tail.

    Integer data get whole-number widths and edges at half-integers, so every bin holds the same
    number of possible values (the last one may hold fewer: it stops at the maximum).

    >>> histogram_edges(0, 9, 0, 9, integer=True).tolist()[:3], histogram_edges(0, 9, 0, 9, True).size
    ([-0.5, 0.5, 1.5], 11)
    >>> histogram_edges(18, 92, 18, 92, integer=True)[[0, 1, -1]].tolist()
    [17.5, 20.5, 92.5]
    >>> histogram_edges(0, 100, 10, 20, integer=False)[[0, 1, 2, -2, -1]].tolist()
    [0.0, 10.0, 10.333333333333334, 20.0, 100.0]
    >>> bool(np.all(np.diff(histogram_edges(-1.9e123, 1.0, -1.9e123, 1.0, integer=True)) > 0))
    True
    """
    if integer:
        first, last = math.floor(core_low), math.ceil(core_high)
        values = last - first + 1
        width = max(1, math.ceil(values / HISTOGRAM_BINS))
        core = first - 0.5 + width * np.arange(math.ceil(values / width) + 1, dtype=np.float64)
        core[-1] = min(core[-1], last + 0.5)
        low, high = low - 0.5, high + 0.5
    else:
        core = np.linspace(core_low, core_high, HISTOGRAM_BINS + 1)
    below = [low] if low < core[0] else []
    above = [high] if high > core[-1] else []
    edges = np.concatenate([below, core, above])
    # beyond 2**53 a half or a bin width can vanish in rounding, and a span can overflow: keep
    # the finite edges that still increase (values are clipped to the outer ones)
    edges = distinct(edges[np.isfinite(edges)])
    return edges if edges.size >= 2 else np.array([low, high], dtype=np.float64)


def numerical_distribution(reference: NumericalSample, current: NumericalSample) -> Distribution | None:
    """Both samples on the same bins, over the full range of both: minimum to maximum.

    Equal-width bins span the 0.5%-99.5% quantiles of both samples. A tail beyond them longer
    than ``LONG_TAIL`` of that span (Balance's few millionaires) gets one wider outer bin of its
    own, so the first and last bins may be "overflow" bins; a shorter tail just widens the equal
    bins. Integer data (ages, counts, days) get integer-aware bins (see ``histogram_edges``).
    Every value is in a bin whose edges contain it, so the shares add up to one.
    """
    if reference.count == 0 or current.count == 0:
        return None
    low, high = min(reference.low, current.low), max(reference.high, current.high)
    integer = integer_valued(reference) and integer_valued(current)
    if high <= low:
        edges = np.array([low - 0.5, low + 0.5]) if integer else np.array([low, low + 1.0])
        if not (edges[0] < edges[1] and np.isfinite(edges).all()):  # a half or one lost in rounding
            edges = np.array([np.nextafter(low, -np.inf), low] if low > 0 else [low, np.nextafter(low, np.inf)])
    else:
        ref_low, ref_high = sorted_quantiles(reference.values, reference.weights, [0.005, 0.995])
        cur_low, cur_high = sorted_quantiles(current.values, current.weights, [0.005, 0.995])
        core_low, core_high = min(ref_low, cur_low), max(ref_high, cur_high)
        span = core_high - core_low
        if span <= 0 or core_low - low <= LONG_TAIL * span:
            core_low = low
        if span <= 0 or high - core_high <= LONG_TAIL * span:
            core_high = high
        edges = histogram_edges(low, high, core_low, core_high, integer)
    shares = []
    for sample in (reference, current):
        values = np.round(sample.values) if integer and sample.relative_error else sample.values
        counts = sorted_histogram(np.clip(values, edges[0], edges[-1]), edges, sample.weights)  # still sorted
        shares.append((counts / sample.count).tolist())
    if integer:
        bins = [(math.ceil(a), math.floor(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        labels = [f"{a}" if a == b else f"{a} - {b}" for a, b in bins]
    else:
        labels = [f"{edges[i]:.6g} - {edges[i + 1]:.6g}" for i in range(len(edges) - 1)]
    return Distribution(kind="bins", labels=labels, reference=shares[0], current=shares[1], edges=edges.tolist())


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
