"""Statistical tests and distances for drift, in one registry.

Every test is a pure function ``(reference, current, **params) -> TestResult``. Numerical tests
receive finite float samples; categorical tests receive non-negative integer category codes
whose order follows the sorted category labels (see :mod:`churnops.monitor.prepare`).
Missing and infinite values are removed before a test sees the data, as Evidently does.

Each registration carries a frozen :class:`StatTestSpec`: its name, kind (``p_value`` or
``distance``), the column types it accepts and its default threshold - Evidently 0.7.23's,
so that configurations carry over. The direction of the verdict lives in one place only,
:func:`is_drift`: a p-value test drifts when ``p < threshold``, a distance when
``distance >= threshold``.

Where Evidently 0.7.23 has the same test, the numbers are Evidently's, verified by the test
suite against Evidently itself. Documented differences:

* Evidently's KS and Cramér-von Mises flag drift at ``p <= threshold`` and its energy distance
  at ``distance > threshold``; this only differs from ours on an exact tie.
* Evidently's G-test compares current counts with raw reference counts (scipy rejects that
  unless both samples have the same size); ours rescales the reference counts to the current
  total, which is the same thing for equal sizes.
* Evidently's exact Cramér-von Mises p-value (both samples of at most 20 values) counts in
  float32 because it computes the number of combinations as a float; scipy's, used here, does
  not. The two differ by about 1e-8.
* TVD: Evidently sums shares in the order of a Python set of labels, which for text labels
  changes with ``PYTHONHASHSEED`` (its p-value then moves on exact ties). Given the values in
  row order, ours reproduces its permutations and its order, and so its p-value exactly on
  integer labels; the exact engine keeps integer TVD columns in row order. From counts (the
  streaming engine, text labels) ours is a Monte-Carlo estimate of the same p-value.
* Chi-squared and G-test on a single category: Evidently returns NaN, ours p = 1 (both say
  "no drift").

scipy is imported inside the tests that need it: the default tests (normed Wasserstein,
Jensen-Shannon, the target's z-test) run on numpy alone, and KS beyond the sizes of its exact
p-value on numpy and ``scipy.special``, which keeps ``churnops monitor`` light.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from churnops.monitor.binning import (
    Binning,
    Weights,
    binned_shares,
    distinct,
    value_counts_aligned,
    weighted_counts_aligned,
)

Kind = Literal["p_value", "distance"]
Sample = NDArray[Any]
NUMERICAL = frozenset({"numerical"})
CATEGORICAL = frozenset({"categorical"})
BOTH = frozenset({"numerical", "categorical"})


@dataclass(frozen=True)
class TestResult:
    """What a test returns: its statistic, and its p-value when it is a hypothesis test."""

    statistic: float
    p_value: float | None = None

    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class StatTestSpec:
    """Everything the engine needs to know about a registered test."""

    name: str
    kind: Kind
    column_types: frozenset[str]
    default_threshold: float
    func: Callable[..., TestResult]
    params: tuple[str, ...] = ()
    evidently_name: str | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "column_types": sorted(self.column_types),
            "default_threshold": self.default_threshold,
            "evidently_name": self.evidently_name,
            "description": self.description,
        }


REGISTRY: dict[str, StatTestSpec] = {}
ALIASES = {"ed": "energy_distance", "mannw": "mannwhitney", "es": "epps_singleton"}
"""Evidently's short names that differ from ours."""


def stattest(
    name: str,
    kind: Kind,
    column_types: frozenset[str],
    default_threshold: float,
    params: tuple[str, ...] = (),
    evidently_name: str | None = None,
) -> Callable[[Callable[..., TestResult]], Callable[..., TestResult]]:
    """Register the decorated function under ``name``."""

    def register(func: Callable[..., TestResult]) -> Callable[..., TestResult]:
        doc = (func.__doc__ or "").strip().splitlines()
        REGISTRY[name] = StatTestSpec(
            name=name,
            kind=kind,
            column_types=column_types,
            default_threshold=default_threshold,
            func=func,
            params=params,
            evidently_name=evidently_name,
            description=doc[0] if doc else "",
        )
        return func

    return register


def get_stattest(name: str) -> StatTestSpec:
    """The spec registered under ``name`` (or one of Evidently's aliases).

    >>> get_stattest("mannw").name
    'mannwhitney'
    """
    spec = REGISTRY.get(ALIASES.get(name, name))
    if spec is None:
        raise KeyError(f"unknown stat test '{name}'; known: {', '.join(sorted(REGISTRY))}")
    return spec


def is_drift(result: TestResult, spec: StatTestSpec, threshold: float) -> bool:
    """The one place that turns a result into a verdict.

    A result that is not a number (a degenerate sample) is never reported as drift.

    >>> is_drift(TestResult(0.2, 0.01), get_stattest("ks"), 0.05)
    True
    >>> is_drift(TestResult(0.05), get_stattest("wasserstein"), 0.1)
    False
    """
    if spec.kind == "p_value":
        p = result.p_value
        return p is not None and not math.isnan(p) and p < threshold
    return not math.isnan(result.statistic) and result.statistic >= threshold


def drift_score(result: TestResult, spec: StatTestSpec) -> float:
    """Evidently's ``drift_score``: the p-value of a test, the value of a distance."""
    if spec.kind == "p_value" and result.p_value is not None:
        return result.p_value
    return result.statistic


def default_test_name(column_type: str, n_reference: int, n_unique: int) -> str:
    """Evidently 0.7's default choice (``_get_default_stattest``).

    ``n_unique`` counts the distinct non-missing values of both samples together.

    >>> default_test_name("numerical", 20_000, 550)
    'wasserstein'
    >>> default_test_name("categorical", 500, 2)
    'z'
    """
    if n_reference <= 1000:
        if column_type == "numerical" and n_unique > 5:
            return "ks"
        return "chisquare" if n_unique > 2 else "z"
    if column_type == "numerical" and n_unique > 5:
        return "wasserstein"
    return "jensenshannon"


# --- numerical tests -----------------------------------------------------------------------


WEIGHTED = ("reference_weights", "current_weights")
KS_EXACT_LIMIT = 10_000
"""scipy's ``ks_2samp`` computes exact p-values up to this sample size, asymptotic ones above."""
W1_PIECE_VALUES = 1 << 17
"""How many values one merge step of :func:`wasserstein_1d` works on."""


@stattest("ks", "p_value", NUMERICAL, 0.05, params=WEIGHTED)
def ks(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test (scipy ``ks_2samp``).

    Samples given as values with counts get the same statistic from their weighted empirical
    CDFs, and - beyond the sizes where scipy computes an exact p-value - scipy's asymptotic
    p-value (``kstwo.sf(D, round(n * m / (n + m)))``), so the result equals scipy's on the
    expanded samples without expanding them.

    >>> round(ks(np.arange(100.0), np.arange(100.0)).p_value, 6)
    1.0
    """
    n = len(reference) if reference_weights is None else int(reference_weights.sum())
    m = len(current) if current_weights is None else int(current_weights.sum())
    if max(n, m) <= KS_EXACT_LIMIT:
        if reference_weights is None and current_weights is None:
            return _ks_2samp(reference, current)
        u_w = np.ones(len(reference), dtype=np.int64) if reference_weights is None else reference_weights
        v_w = np.ones(len(current), dtype=np.int64) if current_weights is None else current_weights
        return _ks_2samp(np.repeat(reference, u_w), np.repeat(current, v_w))
    if reference_weights is None:
        reference = _ascending(reference)
    if current_weights is None:
        current = _ascending(current)
    statistic = _cdf_pass(reference, current, reference_weights, current_weights, ks=True)[1]
    return _ks_asymptotic(statistic, n, m)


def _ks_asymptotic(statistic: float, n: int, m: int) -> TestResult:
    """scipy's asymptotic two-sided p-value of a KS statistic of samples of ``n`` and ``m`` values."""
    from scipy.stats import kstwo

    p_value = float(np.clip(kstwo.sf(statistic, np.round(n * m / (n + m))), 0.0, 1.0))
    return TestResult(statistic, p_value)


def wasserstein_and_ks(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> tuple[TestResult, TestResult]:
    """:func:`wasserstein` and :func:`ks` of the same samples, equal to each on its own, from
    one merge of the samples where both would merge them (sorted samples beyond the sizes of
    KS's exact p-value): the calibrated verdict needs both of a numerical column.

    >>> w, k = wasserstein_and_ks(np.array([0.0, 2.0]), np.array([1.0, 3.0]))
    >>> w == wasserstein(np.array([0.0, 2.0]), np.array([1.0, 3.0])), k.statistic
    (True, 0.5)
    """
    n = len(reference) if reference_weights is None else int(reference_weights.sum())
    m = len(current) if current_weights is None else int(current_weights.sum())
    unsorted = (reference_weights is None and _ascending(reference) is not reference) or (
        current_weights is None and _ascending(current) is not current
    )
    if max(n, m) <= KS_EXACT_LIMIT or unsorted:
        return (
            wasserstein(reference, current, reference_weights, current_weights),
            ks(reference, current, reference_weights, current_weights),
        )
    norm = max(weighted_std(reference, reference_weights), 0.001)
    distance, statistic = _cdf_pass(reference, current, reference_weights, current_weights, ks=True)
    return TestResult(distance / norm), _ks_asymptotic(statistic, n, m)


def _ascending(values: Sample) -> Sample:
    """``values`` sorted (most arrive sorted: then only checked)."""
    return values if values.size < 2 or bool(np.all(values[1:] >= values[:-1])) else np.sort(values)


def _ks_2samp(reference: Sample, current: Sample) -> TestResult:
    """scipy's ``ks_2samp``, without its warning when the exact p-value does not converge and it
    uses the asymptotic one (the documented behaviour, nothing for a user to act on)."""
    import warnings

    from scipy import stats

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="ks_2samp: Exact calculation unsuccessful")
        result = stats.ks_2samp(reference, current)
    return TestResult(float(result.statistic), float(result.pvalue))


def wasserstein_1d(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> float:
    """First Wasserstein distance between two empirical distributions.

    Same value as ``scipy.stats.wasserstein_distance(u, v, u_weights, v_weights)``. scipy
    argsorts both samples and searchsorts their union; samples here arrive sorted (a
    :class:`~churnops.monitor.prepare.NumericalSample` is), so the CDFs come out of a stable
    merge with integer running counts. The merge runs over pieces of about
    :data:`W1_PIECE_VALUES` values cut at common values, so the working memory stays a few MB
    however long the samples are (one merge of 2M values needed ~100 MB), and the CDFs carry
    from one piece to the next. The test suite checks equality with scipy.

    >>> wasserstein_1d(np.array([0.0, 1.0, 3.0]), np.array([5.0, 6.0, 8.0]))
    5.0
    """
    return _cdf_pass(reference, current, reference_weights, current_weights)[0]


def _cdf_pass(
    reference: Sample,
    current: Sample,
    reference_weights: Weights = None,
    current_weights: Weights = None,
    ks: bool = False,
) -> tuple[float, float]:
    """One merge of two sorted samples: the area between their empirical CDFs (Wasserstein) and,
    with ``ks``, their largest gap (the Kolmogorov-Smirnov statistic, taken where scipy takes it:
    after each run of equal values, as ``count / n`` differences, so bit for bit the same)."""
    u_total = float(len(reference) if reference_weights is None else reference_weights.sum())
    v_total = float(len(current) if current_weights is None else current_weights.sum())
    pieces = max(1, (len(reference) + len(current)) // W1_PIECE_VALUES)
    longer = reference if len(reference) >= len(current) else current
    cuts = distinct(longer[(np.arange(1, pieces) * len(longer)) // pieces])
    u_edges = np.concatenate(([0], np.searchsorted(reference, cuts), [len(reference)]))
    v_edges = np.concatenate(([0], np.searchsorted(current, cuts), [len(current)]))
    total = 0.0
    largest = 0.0
    u_before = v_before = 0.0
    last: float | None = None
    for u_lo, u_hi, v_lo, v_hi in zip(u_edges[:-1], u_edges[1:], v_edges[:-1], v_edges[1:], strict=True):
        if u_lo == u_hi and v_lo == v_hi:
            continue
        merged = np.concatenate([reference[u_lo:u_hi], current[v_lo:v_hi]])
        order = np.argsort(merged, kind="stable")
        merged = merged[order]
        from_u = order < u_hi - u_lo
        if reference_weights is None and current_weights is None:
            u_seen = u_before + np.cumsum(from_u, dtype=np.int64)
            v_seen = v_before + np.arange(1, merged.size + 1) - (u_seen - u_before)
        else:
            u_steps = np.ones(u_hi - u_lo, np.int64) if reference_weights is None else reference_weights[u_lo:u_hi]
            v_steps = np.ones(v_hi - v_lo, np.int64) if current_weights is None else current_weights[v_lo:v_hi]
            steps = np.concatenate([u_steps, v_steps])[order]
            u_seen = u_before + np.cumsum(np.where(from_u, steps, 0))
            v_seen = v_before + np.cumsum(np.where(from_u, 0, steps))
        if last is not None:  # the gap between the previous piece and this one
            total += abs(u_before / u_total - v_before / v_total) * float(merged[0] - last)
        difference = u_seen[:-1] / u_total - v_seen[:-1] / v_total
        widths = np.diff(merged)
        np.abs(difference, out=difference)
        total += float(np.sum(np.multiply(difference, widths)))  # not BLAS: the same sum whatever its threads
        if ks:  # a piece ends between different values (pieces are cut at values)
            ends = difference[widths > 0]
            largest = max(largest, float(ends.max()) if ends.size else 0.0)
            largest = max(largest, abs(float(u_seen[-1]) / u_total - float(v_seen[-1]) / v_total))
        u_before, v_before, last = float(u_seen[-1]), float(v_seen[-1]), float(merged[-1])
    return total, largest


def weighted_std(values: Sample, weights: Weights) -> float:
    """Population standard deviation of a sample that may come as distinct values + counts
    (``inf`` beyond the largest float, as numpy gives it, without its warning)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if weights is None:
            return float(np.std(values))
        mean = np.average(values, weights=weights)
        return float(np.sqrt(np.average((values - mean) ** 2, weights=weights)))


@stattest("wasserstein", "distance", NUMERICAL, 0.1, params=WEIGHTED)
def wasserstein(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> TestResult:
    """Wasserstein distance normed by the reference's population std (floor 0.001).

    >>> wasserstein(np.array([0.0, 2.0]), np.array([1.0, 3.0])).statistic
    1.0
    """
    norm = max(weighted_std(reference, reference_weights), 0.001)
    return TestResult(wasserstein_1d(reference, current, reference_weights, current_weights) / norm)


@stattest("anderson", "p_value", NUMERICAL, 0.1)
def anderson(reference: Sample, current: Sample) -> TestResult:
    """k-sample Anderson-Darling test (scipy ``anderson_ksamp``; p-value capped to [0.001, 0.25])."""
    import warnings

    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns whenever it caps the p-value
        result = stats.anderson_ksamp([reference, current])
    return TestResult(float(result[0]), float(result[2]))


@stattest("cramer_von_mises", "p_value", NUMERICAL, 0.1)
def cramer_von_mises(reference: Sample, current: Sample) -> TestResult:
    """Two-sample Cramér-von Mises test (scipy ``cramervonmises_2samp``)."""
    from scipy import stats

    result = stats.cramervonmises_2samp(reference, current)
    return TestResult(float(result.statistic), float(result.pvalue))


@stattest("energy_distance", "distance", NUMERICAL, 0.1, evidently_name="ed", params=WEIGHTED)
def energy_distance(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> TestResult:
    """Energy distance between the two samples (scipy ``energy_distance``, which takes counts)."""
    from scipy import stats

    return TestResult(float(stats.energy_distance(reference, current, reference_weights, current_weights)))


@stattest("mannwhitney", "p_value", NUMERICAL, 0.05, evidently_name="mannw")
def mannwhitney(reference: Sample, current: Sample) -> TestResult:
    """Mann-Whitney U test, one-sided ``alternative="less"`` exactly as Evidently runs it.

    Evidently's choice means only a current sample shifted *upwards* is flagged; use ``ks`` or
    ``cramer_von_mises`` for a two-sided rank-based check.
    """
    from scipy import stats

    result = stats.mannwhitneyu(reference, current, alternative="less")
    return TestResult(float(result.statistic), float(result.pvalue))


@stattest("t_test", "p_value", NUMERICAL, 0.05, params=WEIGHTED)
def t_test(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> TestResult:
    """Student's two-sample t-test with pooled variance (scipy ``ttest_ind``; from the samples'
    means and variances when they come with counts)."""
    from scipy import stats

    if reference_weights is None and current_weights is None:
        result = stats.ttest_ind(reference, current)
        return TestResult(float(result.statistic), float(result.pvalue))

    def moments(values: Sample, weights: Weights) -> tuple[float, float, int]:
        n = int(weights.sum()) if weights is not None else len(values)
        mean = float(np.average(values, weights=weights))
        variance = float(np.sum((values - mean) ** 2 * (weights if weights is not None else 1))) / (n - 1)
        return mean, math.sqrt(variance), n

    result = stats.ttest_ind_from_stats(*moments(reference, reference_weights), *moments(current, current_weights))
    return TestResult(float(result.statistic), float(result.pvalue))


@stattest("epps_singleton", "p_value", NUMERICAL, 0.05, evidently_name="es")
def epps_singleton(reference: Sample, current: Sample) -> TestResult:
    """Epps-Singleton test on the empirical characteristic functions (scipy)."""
    from scipy import stats

    if stats.iqr(np.concatenate([reference, current])) == 0:
        raise ValueError("epps_singleton needs a non-zero interquartile range")
    result = stats.epps_singleton_2samp(reference, current)
    return TestResult(float(result.statistic), float(result.pvalue))


# --- tests on counts (categorical, or numerical through binning) ----------------------------


def _z_two_proportions(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> tuple[float, float]:
    """Pooled two-proportion z statistic and two-sided p-value, as Evidently computes them.

    The "success" is any value other than the smallest one seen in either sample. The
    p-value is ``2 * (1 - Phi(|z|))`` (Evidently's formula, not ``2 * sf``, to agree with it).
    """
    ref_w = np.ones(len(reference), dtype=np.int64) if reference_weights is None else reference_weights
    cur_w = np.ones(len(current), dtype=np.int64) if current_weights is None else current_weights
    present_ref, present_cur = reference[ref_w > 0], current[cur_w > 0]
    first = min(present_ref.min(), present_cur.min())
    n1, n2 = int(ref_w.sum()), int(cur_w.sum())
    p1 = float(ref_w[reference != first].sum()) / n1
    p2 = float(cur_w[current != first].sum()) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    if math.isnan(z):
        return float(z), math.nan
    return float(z), 2 * (1 - normal_cdf(abs(float(z))))


def normal_cdf(x: float) -> float:
    """Standard normal CDF, from ``math.erfc`` (no scipy import for the default target test).

    >>> round(normal_cdf(1.959963984540054), 6)
    0.975
    """
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@stattest("z", "p_value", CATEGORICAL, 0.05, params=WEIGHTED)
def z(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> TestResult:
    """Two-proportion z-test (pooled variance) for a two-valued column.

    >>> z(np.array([0, 1, 0, 1]), np.array([0, 1, 0, 1])).p_value
    1.0
    """
    ref_seen = reference if reference_weights is None else reference[reference_weights > 0]
    cur_seen = current if current_weights is None else current[current_weights > 0]
    if len(distinct(ref_seen)) == 1 and len(distinct(cur_seen)) == 1 and ref_seen[0] == cur_seen[0]:
        return TestResult(0.0, 1.0)
    statistic, p_value = _z_two_proportions(reference, current, reference_weights, current_weights)
    return TestResult(statistic, p_value)


def _aligned_counts(
    reference: Sample, current: Sample, reference_weights: Weights, current_weights: Weights
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    if reference_weights is None and current_weights is None:
        return value_counts_aligned(reference, current)
    ref_counts, cur_counts = weighted_counts_aligned(reference, current, reference_weights, current_weights)
    seen = (ref_counts + cur_counts) > 0
    return ref_counts[seen], cur_counts[seen]


@stattest("chisquare", "p_value", CATEGORICAL, 0.05, params=WEIGHTED)
def chisquare(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> TestResult:
    """Pearson's chi-squared test of the current counts against the reference proportions.

    A category absent from the reference but present in the current sample gives an infinite
    statistic and p = 0, as in Evidently. A single category in both samples gives p = 1
    (Evidently returns NaN there, with the same "no drift" verdict).
    """
    ref_counts, cur_counts = _aligned_counts(reference, current, reference_weights, current_weights)
    if len(ref_counts) == 1:
        return TestResult(0.0, 1.0)
    expected = ref_counts * (int(cur_counts.sum()) / int(ref_counts.sum()))
    from scipy import stats

    with np.errstate(divide="ignore", invalid="ignore"):
        result = stats.chisquare(cur_counts, expected)
    return TestResult(float(result.statistic), float(result.pvalue))


@stattest("g_test", "p_value", CATEGORICAL, 0.1, params=WEIGHTED)
def g_test(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> TestResult:
    """G-test (log-likelihood ratio) of the current counts against the reference proportions."""
    ref_counts, cur_counts = _aligned_counts(reference, current, reference_weights, current_weights)
    if len(ref_counts) == 1:
        return TestResult(0.0, 1.0)
    expected = ref_counts * (int(cur_counts.sum()) / int(ref_counts.sum()))
    from scipy import stats

    with np.errstate(divide="ignore", invalid="ignore"):
        result = stats.power_divergence(cur_counts, expected, lambda_="log-likelihood")
    return TestResult(float(result.statistic), float(result.pvalue))


@stattest("fisher_exact", "p_value", CATEGORICAL, 0.1, params=WEIGHTED)
def fisher_exact(
    reference: Sample, current: Sample, reference_weights: Weights = None, current_weights: Weights = None
) -> TestResult:
    """Fisher's exact test on the 2x2 table of a two-valued column."""
    ref_counts, cur_counts = _aligned_counts(reference, current, reference_weights, current_weights)
    if len(ref_counts) > 2:
        raise ValueError("fisher_exact needs a column with at most two values")
    if len(ref_counts) == 1:
        ref_counts = np.append(ref_counts, 0)
        cur_counts = np.append(cur_counts, 0)
    table = np.array([[cur_counts[1], cur_counts[0]], [ref_counts[1], ref_counts[0]]])
    from scipy import stats

    result = stats.fisher_exact(table)
    return TestResult(float(result.statistic), float(result.pvalue))


def total_variation(ref_counts: NDArray[np.int64], cur_counts: NDArray[np.int64]) -> float:
    """Total variation distance between two count vectors.

    >>> total_variation(np.array([5, 5]), np.array([10, 0]))
    0.5
    """
    return float(0.5 * np.sum(np.abs(ref_counts / ref_counts.sum() - cur_counts / cur_counts.sum())))


@stattest("TVD", "p_value", CATEGORICAL, 0.1, params=("iterations", "labels", *WEIGHTED))
def tvd(
    reference: Sample,
    current: Sample,
    iterations: int = 1000,
    labels: list[Any] | None = None,
    reference_weights: Weights = None,
    current_weights: Weights = None,
) -> TestResult:
    """Total variation distance with a permutation p-value (Evidently's test "TVD").

    The p-value is the share of ``iterations`` random splits of the pooled sample whose distance
    is at least the observed one. Samples given value by value in row order (codes into
    ``labels``, or the labels themselves) get Evidently 0.7.23's p-value exactly: the same
    permutations (``numpy.random.RandomState(0)`` over the reference rows then the current rows:
    the stream Evidently draws after ``np.random.seed(0)``, without touching the global state)
    and the same sums (Evidently adds the shares in the order of a Python set of the labels,
    built from their order of first appearance; a different order changes the last bit of a
    distance, and so the p-value on ties). For integer labels that order does not depend on
    ``PYTHONHASHSEED``; for text it does, in Evidently too.

    Samples given as counts (no row order: the streaming engine) draw the splits from the
    multivariate hypergeometric law that random permutations follow
    (``numpy.random.default_rng(0)``): a Monte-Carlo estimate of the same p-value, which differs
    from Evidently's by the Monte-Carlo error (standard error up to 0.016 with 1000 iterations).

    >>> tvd(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])).statistic
    0.25
    """
    if reference_weights is not None or current_weights is not None:
        ref_counts, cur_counts = _aligned_counts(reference, current, reference_weights, current_weights)
        observed = total_variation(ref_counts, cur_counts)
        pooled = ref_counts + cur_counts
        drawn = np.random.default_rng(0).multivariate_hypergeometric(pooled, int(ref_counts.sum()), size=iterations)
        permuted = np.array([total_variation(row, pooled - row) for row in drawn])
        return TestResult(observed, float(np.mean(observed <= np.abs(permuted))))
    pooled = np.concatenate([reference, current])
    if labels is None:
        distinct, pooled = np.unique(pooled, return_inverse=True)
        labels = distinct.tolist()
    return _tvd_permutations(pooled.astype(np.int64, copy=False), len(reference), list(labels), iterations)


def _tvd_permutations(pooled: NDArray[np.int64], n_reference: int, labels: list[Any], iterations: int) -> TestResult:
    """Evidently's ``permutation_test`` of ``_total_variation_distance``, on codes into ``labels``
    (the reference rows, then the current rows).

    Each split is computed from where the permutation sends each row - the counts and the order
    of first appearance of every label in the new reference - in a few passes over the rows.
    Evidently's new current sample lists the labels in their order of first appearance in the
    pooled rows (``Counter`` subtraction).
    """
    k = len(labels)
    index = {label: code for code, label in enumerate(labels)}

    def distance(ref_counts: NDArray[np.int64], cur_counts: NDArray[np.int64], ref_first: Any, cur_first: Any) -> Any:
        keys = set(labels[c] for c in ref_first) | set(labels[c] for c in cur_first)
        order = [index[label] for label in keys]
        ref, cur = ref_counts[order], cur_counts[order]
        return 0.5 * np.sum(np.abs(ref / ref.sum() - cur / cur.sum()))

    reference, current = pooled[:n_reference], pooled[n_reference:]
    observed = distance(
        np.bincount(reference, minlength=k),
        np.bincount(current, minlength=k),
        _first_appearances(reference).tolist(),
        _first_appearances(current).tolist(),
    )
    total = np.bincount(pooled, minlength=k)
    pooled_first = _first_appearances(pooled)
    by_label = np.argsort(pooled, kind="stable")
    starts = np.flatnonzero(np.concatenate(([True], np.diff(pooled[by_label]) != 0)))
    present = pooled[by_label][starts]
    generator = np.random.RandomState(0)
    rows = np.arange(pooled.size)
    landed = np.empty(pooled.size, dtype=np.int64)
    permuted = np.empty(iterations)
    for i in range(iterations):
        landed[generator.permutation(pooled.size)] = rows  # where each pooled row goes
        by_label_landed = landed[by_label]
        first = np.minimum.reduceat(by_label_landed, starts)
        drawn = first < n_reference
        ref_counts = np.zeros(k, dtype=np.int64)
        ref_counts[present] = np.add.reduceat((by_label_landed < n_reference).astype(np.int64), starts)
        cur_counts = total - ref_counts
        ref_first = present[drawn][np.argsort(first[drawn])]
        cur_first = pooled_first[cur_counts[pooled_first] > 0]
        permuted[i] = distance(ref_counts, cur_counts, ref_first.tolist(), cur_first.tolist())
    return TestResult(float(observed), float(np.mean(observed <= np.abs(permuted))))


def _first_appearances(codes: NDArray[np.int64]) -> NDArray[np.int64]:
    """The distinct codes in order of first appearance (as ``pandas.Series.unique``)."""
    _, first = np.unique(codes, return_index=True)
    return codes[np.sort(first)]


# --- binned distances ----------------------------------------------------------------------

BINNED_PARAMS = ("column_type", "binning", "n_bins", *WEIGHTED)


@stattest("jensenshannon", "distance", BOTH, 0.1, params=BINNED_PARAMS)
def jensenshannon(
    reference: Sample,
    current: Sample,
    column_type: str = "categorical",
    binning: Binning = "evidently",
    n_bins: int = 10,
    reference_weights: Weights = None,
    current_weights: Weights = None,
) -> TestResult:
    """Jensen-Shannon distance (natural log) between the binned distributions.

    >>> jensenshannon(np.array([0, 1]), np.array([0, 1])).statistic
    0.0
    """
    ref, cur = binned_shares(
        reference, current, column_type, binning, n_bins, False, reference_weights, current_weights
    )
    return TestResult(jensen_shannon_distance(ref, cur))


def jensen_shannon_distance(p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
    """``scipy.spatial.distance.jensenshannon(p, q)`` (natural log), without importing
    scipy.spatial (about 40 MB): the same operations in the same order, on scipy's ``rel_entr``.
    Near zero the two sums cancel, so another logarithm (NumPy's differs from scipy's in the
    last bit on about a third of inputs) or another order moves the distance by ~1e-8 relative.

    >>> round(jensen_shannon_distance(np.array([1.0, 0.0]), np.array([0.5, 0.5])), 6)
    0.464501
    """
    p = p / np.sum(p)
    q = q / np.sum(q)
    m = (p + q) / 2.0
    js = np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))
    return float(np.sqrt(js / 2.0))


REL_ENTR_IN_PYTHON = 4096
"""Up to this many bins ``rel_entr`` is computed in Python (microseconds); above, importing
``scipy.special`` (about 0.25 s) is the cheaper of the two."""


def rel_entr(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """``scipy.special.rel_entr`` elementwise, bit for bit: scipy (1.15 on) takes ``log1p`` of the
    relative difference when the two are within a factor of 2, the C library's ``log`` of the
    ratio otherwise, and the difference of two logarithms when the ratio under- or overflows -
    Python's ``math`` calls the same C library, NumPy's ``log`` does not.

    >>> rel_entr(np.array([0.5, 0.0, 1.0]), np.array([0.25, 0.5, 0.0])).tolist()
    [0.34657359027997264, 0.0, inf]
    """
    if x.size > REL_ENTR_IN_PYTHON:
        from scipy.special import rel_entr as scipy_rel_entr

        return np.asarray(scipy_rel_entr(x, y), dtype=np.float64)
    smallest = sys.float_info.min
    values = []
    for a, b in zip(x.tolist(), y.tolist(), strict=True):
        if math.isnan(a) or math.isnan(b):
            values.append(math.nan)
        elif a <= 0 or b <= 0:
            values.append(0.0 if a == 0 and b >= 0 else math.inf)
        else:
            ratio = a / b
            if 0.5 < ratio < 2:
                values.append(a * math.log1p((a - b) / b))
            elif smallest < ratio < math.inf:
                values.append(a * math.log(ratio))
            else:
                values.append(a * (math.log(a) - math.log(b)))
    return np.array(values, dtype=np.float64)


@stattest("psi", "distance", BOTH, 0.1, params=BINNED_PARAMS)
def psi(
    reference: Sample,
    current: Sample,
    column_type: str = "categorical",
    binning: Binning = "evidently",
    n_bins: int = 10,
    reference_weights: Weights = None,
    current_weights: Weights = None,
) -> TestResult:
    """Population Stability Index between the binned distributions."""
    ref, cur = binned_shares(reference, current, column_type, binning, n_bins, True, reference_weights, current_weights)
    return TestResult(float(np.sum((ref - cur) * np.log(ref / cur))))


@stattest("kl_div", "distance", BOTH, 0.1, params=BINNED_PARAMS)
def kl_div(
    reference: Sample,
    current: Sample,
    column_type: str = "categorical",
    binning: Binning = "evidently",
    n_bins: int = 10,
    reference_weights: Weights = None,
    current_weights: Weights = None,
) -> TestResult:
    """Kullback-Leibler divergence of the reference from the current binned distribution."""
    ref, cur = binned_shares(reference, current, column_type, binning, n_bins, True, reference_weights, current_weights)
    from scipy import stats

    return TestResult(float(stats.entropy(ref, cur)))


@stattest("hellinger", "distance", BOTH, 0.1, params=BINNED_PARAMS)
def hellinger(
    reference: Sample,
    current: Sample,
    column_type: str = "categorical",
    binning: Binning = "evidently",
    n_bins: int = 10,
    reference_weights: Weights = None,
    current_weights: Weights = None,
) -> TestResult:
    """Hellinger distance between the two distributions.

    Categorical: over category shares. Numerical, ``evidently`` binning: Evidently's own rule,
    Sturges bins over the *distinct* values of both samples and density histograms; numerical,
    ``quantile`` binning: over the reference-quantile bins.
    """
    if column_type == "numerical" and binning == "evidently":
        values = distinct(np.concatenate((reference, current)))  # np.union1d, without numpy.ma
        try:
            edges = np.histogram_bin_edges(values, bins="sturges")
        except ValueError:  # values a few units in the last place apart: no bin can tell them apart
            return TestResult(0.0)
        h_ref = np.histogram(reference, bins=edges, weights=reference_weights, density=True)[0]
        h_cur = np.histogram(current, bins=edges, weights=current_weights, density=True)[0]
        width = (edges.max() - edges.min()) / (len(edges) - 1)
        coefficient = float(np.sum(np.sqrt(h_ref * h_cur)) * width)
    else:
        ref, cur = binned_shares(
            reference, current, column_type, binning, n_bins, False, reference_weights, current_weights
        )
        coefficient = float(np.sum(np.sqrt(ref * cur)))
    return TestResult(math.sqrt(1.0 - min(max(coefficient, 0.0), 1.0)))
