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

Categorical samples arrive as integer codes (see :mod:`churnops.monitor.prepare`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Binning = Literal["evidently", "quantile"]
EVIDENTLY_MAX_DISCRETE = 20


def value_counts_aligned(
    reference: NDArray[np.generic], current: NDArray[np.generic]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Counts of every value seen in either sample, aligned on the sorted union of values.

    >>> value_counts_aligned(np.array([0, 0, 1]), np.array([1, 2]))
    (array([2, 1, 0]), array([0, 1, 1]))
    """
    if (
        reference.dtype.kind in "iu"
        and current.dtype.kind in "iu"
        and min(reference.min(initial=0), current.min(initial=0)) >= 0
    ):
        size = int(max(reference.max(initial=-1), current.max(initial=-1))) + 1
        ref_counts = np.bincount(reference, minlength=size)
        cur_counts = np.bincount(current, minlength=size)
        seen = (ref_counts + cur_counts) > 0
        return ref_counts[seen].astype(np.int64), cur_counts[seen].astype(np.int64)
    keys, inverse = np.unique(np.concatenate([reference, current]), return_inverse=True)
    ref_counts = np.bincount(inverse[: len(reference)], minlength=len(keys))
    cur_counts = np.bincount(inverse[len(reference) :], minlength=len(keys))
    return ref_counts.astype(np.int64), cur_counts.astype(np.int64)


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


def binned_shares(
    reference: NDArray[np.generic],
    current: NDArray[np.generic],
    column_type: str,
    binning: Binning = "evidently",
    n_bins: int = 10,
    fill_zeroes: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Aligned share vectors of two samples.

    Parameters
    ----------
    reference, current
        Finite numerical values, or integer category codes.
    column_type
        ``"numerical"`` or ``"categorical"``.
    binning
        ``"evidently"`` or ``"quantile"`` (see the module docstring).
    n_bins
        Bin count of the quantile mode.
    fill_zeroes
        Replace empty bins by a small share (PSI and KL need it; JS does not).

    Examples
    --------
    >>> ref, cur = binned_shares(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), "categorical")
    >>> ref.tolist(), cur.tolist()
    ([0.5, 0.5], [0.25, 0.75])
    """
    numerical = column_type == "numerical"
    if numerical and binning == "quantile":
        edges = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
        ref_counts = np.bincount(np.searchsorted(edges, reference, "right"), minlength=len(edges) + 1)
        cur_counts = np.bincount(np.searchsorted(edges, current, "right"), minlength=len(edges) + 1)
    elif numerical and len(np.unique(reference)) > EVIDENTLY_MAX_DISCRETE:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        ref_counts = np.histogram(reference, edges)[0]
        cur_counts = np.histogram(current, edges)[0]
    else:
        ref_counts, cur_counts = value_counts_aligned(reference, current)
    ref_shares = ref_counts / len(reference)
    cur_shares = cur_counts / len(current)
    if fill_zeroes:
        return fill_zero_shares(ref_shares), fill_zero_shares(cur_shares)
    return ref_shares.astype(np.float64), cur_shares.astype(np.float64)
