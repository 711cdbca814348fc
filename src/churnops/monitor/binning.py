"""Turning two samples into two aligned share vectors, for the binned tests (PSI, JS, KL...).

Two modes:

``evidently``
    Evidently 0.7's own rule (``get_binned_data``): a numerical column with more than 20
    distinct reference values is cut into Sturges equal-width bins over the union of both
    samples; anything else gets one bin per value seen in either sample. Evidently accepts an
    ``n_bins`` argument and ignores it (evidently#1400); so does this mode.
``quantile``
    Numerical columns are cut at the reference's quantiles into ``n_bins`` bins (fewer when
    quantiles coincide), the outer bins open-ended so that current values beyond the
    reference's range are counted. Categorical columns get one bin per category either way.

Numerical samples are sorted finite values, optionally as distinct values with counts
(``weights``); categorical samples are integer codes (see :mod:`churnops.monitor.prepare`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Weights = NDArray[np.int64] | None
Binning = Literal["evidently", "quantile"]
EVIDENTLY_MAX_DISCRETE = 20


def sorted_histogram(values: FloatArray, edges: FloatArray, weights: Weights = None) -> NDArray[np.int64]:
    """``np.histogram(values, edges, weights=weights)[0]`` for values already sorted.

    NumPy sorts the values again, in blocks, to count them (35 ms for a million values); here
    each edge is looked up once. The same bins: ``[a, b)``, the last one ``[a, b]``, values
    outside the edges left out.

    >>> values, edges = np.array([0.0, 1.0, 1.0, 2.5, 3.0, 9.0]), np.array([1.0, 2.0, 3.0])
    >>> sorted_histogram(values, edges).tolist(), np.histogram(values, edges)[0].tolist()
    ([2, 2], [2, 2])
    >>> sorted_histogram(values, edges, np.array([1, 2, 3, 4, 5, 6])).tolist()
    [5, 9]
    """
    positions = np.concatenate(
        [np.searchsorted(values, edges[:-1], side="left"), np.searchsorted(values, edges[-1:], side="right")]
    )
    if weights is None:
        return np.diff(positions).astype(np.int64)
    running = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(weights, dtype=np.int64)])
    return np.diff(running[positions])


def value_counts_aligned(
    reference: NDArray[np.generic], current: NDArray[np.generic]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Counts of every value seen in either sample, aligned on the sorted union of values.

    >>> value_counts_aligned(np.array([0, 0, 1]), np.array([1, 2]))
    (array([2, 1, 0]), array([0, 1, 1]))
    >>> value_counts_aligned(np.array([0, 2**40]), np.array([2**40]))  # sorted, not a 2**40 table
    (array([1, 1]), array([0, 1]))
    """
    size = 0
    if reference.dtype.kind in "iu" and current.dtype.kind in "iu" and reference.size + current.size:
        low = min(reference.min(initial=0), current.min(initial=0))
        size = int(max(reference.max(initial=-1), current.max(initial=-1))) + 1 if low >= 0 else 0
    # codes (0 .. k-1) are counted in a table; values spread wider are sorted instead
    if 0 < size <= max(4 * (reference.size + current.size), 1 << 16):
        ref_counts = np.bincount(reference, minlength=size)
        cur_counts = np.bincount(current, minlength=size)
        seen = (ref_counts + cur_counts) > 0
        return ref_counts[seen].astype(np.int64), cur_counts[seen].astype(np.int64)
    keys, inverse = np.unique(np.concatenate([reference, current]), return_inverse=True)
    ref_counts = np.bincount(inverse[: len(reference)], minlength=len(keys))
    cur_counts = np.bincount(inverse[len(reference) :], minlength=len(keys))
    return ref_counts.astype(np.int64), cur_counts.astype(np.int64)


def weighted_counts_aligned(
    reference: FloatArray, current: FloatArray, reference_weights: Weights, current_weights: Weights
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Like :func:`value_counts_aligned` for numbers that may come as distinct values + counts."""
    keys, inverse = np.unique(np.concatenate([reference, current]), return_inverse=True)
    ref_w = reference_weights if reference_weights is not None else np.ones(len(reference), dtype=np.int64)
    cur_w = current_weights if current_weights is not None else np.ones(len(current), dtype=np.int64)
    ref_counts = np.bincount(inverse[: len(reference)], weights=ref_w, minlength=len(keys))
    cur_counts = np.bincount(inverse[len(reference) :], weights=cur_w, minlength=len(keys))
    return ref_counts.astype(np.int64), cur_counts.astype(np.int64)


def sturges_edges(low: float, high: float, n: int) -> FloatArray:
    """``numpy.histogram_bin_edges(data, "sturges")`` from the data's min, max and size only.

    The same arithmetic as numpy, so the edges are identical without concatenating samples.

    >>> data = np.array([0.0, 1.5, 2.0, 7.25, 3.0])
    >>> bool(np.array_equal(sturges_edges(0.0, 7.25, 5), np.histogram_bin_edges(data, "sturges")))
    True
    """
    first, last = np.float64(low), np.float64(high)
    width = (last - first) / (np.log2(n) + 1.0)
    if first == last:
        first, last = first - 0.5, last + 0.5
    bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, bins + 1, endpoint=True)


def distinct(values: NDArray[np.generic]) -> NDArray[np.generic]:
    """``np.unique(values)``: the sorted distinct values. Asked for the values alone, numpy checks
    whether the array is masked, which imports numpy.ma (10 ms of a small run); asked for their
    counts too, it does not.

    >>> distinct(np.array([3.0, 1.0, 3.0]))
    array([1., 3.])
    """
    return np.unique(values, return_counts=True)[0]


def run_starts(sorted_values: NDArray[np.generic]) -> NDArray[np.intp]:
    """Where each run of equal values of a sorted, non-empty array begins.

    >>> run_starts(np.array([1.0, 1.0, 2.0, 5.0, 5.0])).tolist()
    [0, 2, 3]
    """
    return np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))


def n_distinct(values: FloatArray, weights: Weights) -> int:
    """Distinct values of a sorted sample."""
    if weights is not None or values.size == 0:
        return int(values.size)
    return int(np.count_nonzero(values[1:] != values[:-1]) + 1)


def total(values: FloatArray, weights: Weights) -> int:
    return int(weights.sum()) if weights is not None else int(values.size)


def weighted_quantiles(values: FloatArray, weights: Weights, probabilities: FloatArray) -> FloatArray:
    """Inverted-CDF quantiles of a sorted sample (the same for raw and weighted forms)."""
    cumulative = np.cumsum(weights) if weights is not None else np.arange(1, values.size + 1)
    positions = np.searchsorted(cumulative, probabilities * cumulative[-1], side="left")
    return values[np.minimum(positions, values.size - 1)]


def binned_shares(
    reference: NDArray[np.generic],
    current: NDArray[np.generic],
    column_type: str,
    binning: Binning = "evidently",
    n_bins: int = 10,
    fill_zeroes: bool = True,
    reference_weights: Weights = None,
    current_weights: Weights = None,
) -> tuple[FloatArray, FloatArray]:
    """Aligned share vectors of two samples.

    Parameters
    ----------
    reference, current
        Sorted finite values, or integer category codes.
    column_type
        ``"numerical"`` or ``"categorical"``.
    binning
        ``"evidently"`` or ``"quantile"`` (see the module docstring).
    n_bins
        Bin count of the quantile mode.
    fill_zeroes
        Replace empty bins by a small share (PSI and KL need it; JS does not).
    reference_weights, current_weights
        Counts of each value when a numerical sample comes as distinct values.

    Examples
    --------
    >>> ref, cur = binned_shares(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), "categorical")
    >>> ref.tolist(), cur.tolist()
    ([0.5, 0.5], [0.25, 0.75])
    """
    if column_type == "numerical":
        ref_w, cur_w = reference_weights, current_weights
        if binning == "quantile":
            inner = weighted_quantiles(reference, ref_w, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
            edges = np.unique(inner)
            ref_counts = np.bincount(np.searchsorted(edges, reference, "right"), ref_w, len(edges) + 1)
            cur_counts = np.bincount(np.searchsorted(edges, current, "right"), cur_w, len(edges) + 1)
        elif n_distinct(reference, ref_w) > EVIDENTLY_MAX_DISCRETE:
            low, high = min(reference[0], current[0]), max(reference[-1], current[-1])
            edges = sturges_edges(low, high, total(reference, ref_w) + total(current, cur_w))
            ref_counts = sorted_histogram(reference, edges, ref_w)
            cur_counts = sorted_histogram(current, edges, cur_w)
        else:
            ref_counts, cur_counts = weighted_counts_aligned(reference, current, ref_w, cur_w)  # type: ignore[arg-type]
        n_ref, n_cur = total(reference, ref_w), total(current, cur_w)
    elif reference_weights is None and current_weights is None:
        ref_counts, cur_counts = value_counts_aligned(reference, current)
        n_ref, n_cur = len(reference), len(current)
    else:  # categories given as codes with counts (the streaming engine)
        ref_counts, cur_counts = weighted_counts_aligned(reference, current, reference_weights, current_weights)  # type: ignore[arg-type]
        seen = (ref_counts + cur_counts) > 0
        ref_counts, cur_counts = ref_counts[seen], cur_counts[seen]
        n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
    ref_shares = np.asarray(ref_counts, dtype=np.float64) / n_ref
    cur_shares = np.asarray(cur_counts, dtype=np.float64) / n_cur
    if fill_zeroes:
        return fill_zero_shares(ref_shares), fill_zero_shares(cur_shares)
    return ref_shares, cur_shares


def fill_zero_shares(shares: FloatArray) -> FloatArray:
    """Evidently's zero filling for PSI and KL: empty bins get a small positive share.

    The small share is the smallest non-zero share divided by 1e6 when that is at most 1e-4,
    else 1e-4 - exactly Evidently 0.7's rule, so that log ratios stay finite.
    """
    out = shares.copy()
    nonzero = out[out != 0]
    smallest = float(nonzero.min()) if nonzero.size else 0.0
    out[out == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return out
