"""Mergeable summaries of a numerical column for the streaming engine.

Two forms, both mergeable in any order with the same result (so partitions computed anywhere,
by Dask or Spark, merge into exactly what one pass over the whole table gives):

:class:`ValueCounts`
    Every distinct value with its count - exact. Columns with at most
    :data:`EXACT_DISTINCT_LIMIT` distinct values (integers, scores, dates, flags) stay in this
    form, and every statistic computed from it is the exact engine's.
:class:`LogHistogram`
    A log-bucket histogram with relative accuracy :data:`RELATIVE_ERROR` (the quantile sketch of
    DDSketch, Masson et al., VLDB 2019, without bucket collapsing): a positive value ``x`` falls in
    bucket ``k = ceil(log_gamma(x))`` with ``gamma = (1 + a) / (1 - a)``, negative values in a
    mirrored set of buckets and zero in its own. Every bucket is represented by one value within a
    relative distance ``a`` of each value it holds, so every quantile read from the sketch is
    within a relative ``a`` of a true quantile, and each value moves by at most ``a * |x|`` when
    tests consume the sketch as a weighted sample. The buckets are fixed by the data's values
    alone, which is what makes the sketch mergeable without coordination.

The error bounds, and what they mean for each drift statistic, are in ``docs/streaming.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from churnops.monitor.prepare import distinct_counts, summed_counts

RELATIVE_ERROR = 1e-4
"""Relative accuracy of :class:`LogHistogram` (a = 0.01%)."""
GAMMA = (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
LOG_GAMMA = math.log(GAMMA)
EXACT_DISTINCT_LIMIT = 1 << 16
"""A column with more distinct values than this is summarized by a :class:`LogHistogram`."""
DENSE_RANGE = 1 << 20
"""Chunks whose integer values (or bucket indices) span less than this are counted with bincount."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def count_values(values: NDArray[np.generic]) -> tuple[FloatArray, IntArray]:
    """Distinct values (sorted, as floats) and their counts, for one chunk.

    Integer arrays with a small range are counted with ``bincount`` (linear time).

    >>> count_values(np.array([3, 1, 3, 3]))
    (array([1., 3.]), array([1, 3]))
    """
    if values.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    if values.dtype.kind in "iu":
        low, high = int(values.min()), int(values.max())
        if high - low < DENSE_RANGE:
            counts = np.bincount((values - low).astype(np.intp, copy=False))
            present = np.flatnonzero(counts)
            return (present + low).astype(np.float64), counts[present].astype(np.int64)
    distinct, counts = distinct_counts(values)
    return distinct.astype(np.float64, copy=False), counts


def merge_counts(
    parts: list[tuple[NDArray[np.generic], IntArray]],
) -> tuple[NDArray[np.generic], IntArray]:
    """Merge (keys, counts) pairs into sorted distinct keys with summed counts."""
    parts = [p for p in parts if p[0].size]
    if not parts:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    if len(parts) == 1:
        return parts[0]
    keys = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    return summed_counts(keys, counts)


@dataclass
class ValueCounts:
    """Exact distinct values with counts; merged lazily (pending parts are combined when needed)."""

    values: FloatArray = field(default_factory=lambda: np.zeros(0))
    counts: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pending: list[tuple[FloatArray, IntArray]] = field(default_factory=list)
    pending_size: int = 0

    def add(self, values: NDArray[np.generic]) -> None:
        self.add_counted(*count_values(values))

    def add_counted(self, values: FloatArray, counts: IntArray) -> None:
        self.pending.append((values, counts))
        self.pending_size += values.size
        if self.pending_size > max(4 * self.values.size, 1 << 16):
            self.compact()

    def compact(self) -> None:
        if self.pending:
            self.values, self.counts = merge_counts([(self.values, self.counts), *self.pending])  # type: ignore[assignment]
            self.pending, self.pending_size = [], 0

    @property
    def distinct(self) -> int:
        """Distinct values (exact after :meth:`compact`; an upper bound before)."""
        return int(self.values.size + self.pending_size)

    def merge(self, other: ValueCounts) -> None:
        other.compact()
        self.add_counted(other.values, other.counts)


def bucket_index(magnitudes: FloatArray) -> IntArray:
    """Bucket of each positive magnitude: ``ceil(log(x) / log(gamma))``."""
    index = np.log(magnitudes)
    index *= 1.0 / LOG_GAMMA
    np.ceil(index, out=index)
    return index.astype(np.int64)


def bucket_value(index: IntArray) -> FloatArray:
    """The value that represents a bucket: within a relative ``RELATIVE_ERROR`` of all it holds."""
    return np.exp(index * LOG_GAMMA) * (2.0 / (GAMMA + 1.0))


@dataclass
class BucketCounts:
    """Counts per bucket index: a dense array over the indices' range (with its offset), or -
    when values span more than :data:`DENSE_RANGE` buckets - sparse (keys, counts)."""

    offset: int = 0
    dense: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sparse: ValueCounts | None = None

    def add_index(self, index: IntArray, bounds: tuple[int, int] | None = None) -> None:
        """Count each bucket index of one chunk (``bounds``: its minimum and maximum, if known)."""
        if index.size == 0:
            return
        low, high = bounds if bounds is not None else (int(index.min()), int(index.max()))
        if high - low < DENSE_RANGE:
            self.add_dense(low, np.bincount(index - low))
        else:
            keys, counts = np.unique(index, return_counts=True)
            self.add_sparse(keys, counts.astype(np.int64))

    def add_dense(self, low: int, counts: IntArray) -> None:
        if self.sparse is not None:
            present = np.flatnonzero(counts)
            self.sparse.add_counted(present + low, counts[present])  # type: ignore[arg-type]
            return
        if self.dense.size == 0:
            self.offset, self.dense = low, counts.astype(np.int64)
            return
        start = min(self.offset, low)
        end = max(self.offset + self.dense.size, low + counts.size)
        if end - start > DENSE_RANGE:
            self._to_sparse()
            self.add_dense(low, counts)
            return
        if start < self.offset or end > self.offset + self.dense.size:
            grown = np.zeros(end - start, dtype=np.int64)
            grown[self.offset - start : self.offset - start + self.dense.size] = self.dense
            self.offset, self.dense = start, grown
        self.dense[low - self.offset : low - self.offset + counts.size] += counts

    def add_sparse(self, keys: IntArray, counts: IntArray) -> None:
        if keys.size == 0:
            return
        if self.sparse is None and int(keys.max()) - min(int(keys.min()), self.offset) < DENSE_RANGE:
            low = int(keys.min())
            self.add_dense(low, np.bincount(keys - low, weights=counts).astype(np.int64))
            return
        if self.sparse is None:
            self._to_sparse()
        assert self.sparse is not None
        self.sparse.add_counted(keys, counts)  # type: ignore[arg-type]

    def _to_sparse(self) -> None:
        present = np.flatnonzero(self.dense)
        self.sparse = ValueCounts()
        if present.size:
            self.sparse.add_counted(present + self.offset, self.dense[present])  # type: ignore[arg-type]
        self.dense = np.zeros(0, dtype=np.int64)

    def merge(self, other: BucketCounts) -> None:
        if other.sparse is not None:
            other.sparse.compact()
            self.add_sparse(other.sparse.values.astype(np.int64), other.sparse.counts)
        elif other.dense.size:
            self.add_dense(other.offset, other.dense)

    def items(self) -> tuple[IntArray, IntArray]:
        """Present bucket indices (ascending) and their counts."""
        if self.sparse is not None:
            self.sparse.compact()
            return self.sparse.values.astype(np.int64), self.sparse.counts
        present = np.flatnonzero(self.dense)
        return present + self.offset, self.dense[present]

    @property
    def total(self) -> int:
        return int(self.items()[1].sum())


@dataclass
class ExactCounts:
    """Every distinct value and its count: integers in a :class:`BucketCounts` keyed by the value
    itself (a bincount per chunk), anything else in a :class:`ValueCounts`."""

    integers: BucketCounts | None = field(default_factory=BucketCounts)
    floats: ValueCounts | None = None

    def add(self, values: NDArray[np.generic], bounds: tuple[float, float] | None = None) -> None:
        if values.size == 0:
            return
        if self.integers is not None and values.dtype.kind in "iu":
            exact = bounds is not None and max(-bounds[0], bounds[1]) < 2**53  # floats hold them exactly
            known = (int(bounds[0]), int(bounds[1])) if exact and bounds is not None else None
            self.integers.add_index(values.astype(np.int64, copy=False), known)
            return
        self._as_floats().add(values)

    def add_counted(self, values: FloatArray, counts: IntArray) -> None:
        self._as_floats().add_counted(values, counts)

    def _as_floats(self) -> ValueCounts:
        if self.floats is None:
            self.floats = ValueCounts()
            if self.integers is not None:
                keys, counts = self.integers.items()
                if keys.size:
                    self.floats.add_counted(keys.astype(np.float64), counts)
                self.integers = None
        return self.floats

    @property
    def distinct(self) -> int:
        """Distinct values (an upper bound while float parts are pending)."""
        if self.integers is not None:
            if self.integers.sparse is not None:
                return self.integers.sparse.distinct
            return int(np.count_nonzero(self.integers.dense))
        assert self.floats is not None
        return self.floats.distinct

    def items(self) -> tuple[FloatArray, IntArray]:
        """Distinct values (ascending, as floats) and their counts."""
        if self.integers is not None:
            keys, counts = self.integers.items()
            return keys.astype(np.float64), counts
        assert self.floats is not None
        self.floats.compact()
        return self.floats.values.astype(np.float64), self.floats.counts

    def merge(self, other: ExactCounts) -> None:
        if self.integers is not None and other.integers is not None:
            self.integers.merge(other.integers)
        else:
            values, counts = other.items()
            if values.size:
                self.add_counted(values, counts)


@dataclass
class LogHistogram:
    """Counts per log bucket for positive and negative values, and a count of zeros."""

    positive: BucketCounts = field(default_factory=BucketCounts)
    negative: BucketCounts = field(default_factory=BucketCounts)
    zeros: int = 0

    def add(
        self, values: FloatArray, weights: IntArray | None = None, bounds: tuple[float, float] | None = None
    ) -> None:
        """Finite values (optionally each with a count; ``bounds``: their minimum and maximum)."""
        if weights is None and bounds is not None and bounds[0] > 0:
            # all positive: the buckets of the bounds bracket every bucket (one bucket of slack
            # on each side for a last-digit difference of the logarithm), no pass for min/max
            low, high = bucket_index(np.array(bounds, dtype=np.float64))
            self.positive.add_index(bucket_index(values), (int(low) - 1, int(high) + 1))
            return
        if weights is None:
            positive = values > 0
            n_positive = int(np.count_nonzero(positive))
            if n_positive == values.size:
                self.positive.add_index(bucket_index(values))
                return
            negative = values < 0
            self.zeros += int(values.size - n_positive - np.count_nonzero(negative))
            if n_positive:
                self.positive.add_index(bucket_index(values[positive]))
            if negative.any():
                self.negative.add_index(bucket_index(-values[negative]))
            return
        for mask, store, sign in ((values > 0, self.positive, 1.0), (values < 0, self.negative, -1.0)):
            if mask.any():
                keys, counts = merge_counts([(bucket_index(values[mask] * sign), weights[mask])])
                store.add_sparse(keys.astype(np.int64), counts)
        self.zeros += int(weights[values == 0].sum())

    def merge(self, other: LogHistogram) -> None:
        self.positive.merge(other.positive)
        self.negative.merge(other.negative)
        self.zeros += other.zeros

    @property
    def count(self) -> int:
        return self.positive.total + self.negative.total + self.zeros

    def weighted_sample(self) -> tuple[FloatArray, IntArray]:
        """Bucket values, sorted ascending, with their counts."""
        neg_keys, neg_counts = self.negative.items()
        pos_keys, pos_counts = self.positive.items()
        parts_values = [-bucket_value(neg_keys)[::-1]]
        parts_counts = [neg_counts[::-1]]
        if self.zeros:
            parts_values.append(np.zeros(1))
            parts_counts.append(np.array([self.zeros], dtype=np.int64))
        parts_values.append(bucket_value(pos_keys))
        parts_counts.append(pos_counts)
        return np.concatenate(parts_values), np.concatenate(parts_counts).astype(np.int64)
