"""The calibrated verdict: a false-alarm rate known in advance, whatever the sample sizes.

Evidently's rule compares each column's statistic with a fixed cut-off (a normed Wasserstein
distance of 0.1, a p-value of 0.05). A fixed distance cut-off fires on harmless differences in
small samples (sampling noise alone reaches it) and a fixed p-value at 0.05 per column gives
many columns many chances of a false alarm. The calibrated verdict decides each column with
three rules instead:

1. **A test whose null distribution is known at the actual sizes.** Numbers: the two-sample
   Kolmogorov-Smirnov test (exact p-value for samples up to 10,000 values, asymptotic beyond;
   with tied values it errs on the side of fewer alarms). Categories, and numbers with at most
   :data:`FEW_VALUES` distinct values: Pearson's chi-squared test of homogeneity on the
   reference x current table, which - unlike Evidently's chi-squared goodness of fit - accounts
   for the reference being a sample too; when a cell is expected to hold fewer than
   :data:`MIN_EXPECTED` rows (rare or new categories) the p-value comes from random relabellings
   of the rows instead of the chi-squared approximation.
2. **Benjamini-Hochberg** adjustment of the p-values across the columns tested together,
   so the expected share of false discoveries among the columns reported stays at ``fdr``;
   with no drift at all, the chance of any column being reported is ``fdr``.
3. **A practical-effect floor** ``min_effect``: the change must also be large enough to matter -
   the Wasserstein distance in reference standard deviations for numbers, the total variation
   distance (the share of rows that would have to change category) for categories. At millions
   of rows a tiny, harmless shift is significant; it is reported, not alarmed.

The column's own Evidently test still runs and is reported beside (``evidently_drift_detected``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from churnops.monitor.binning import distinct
from churnops.monitor.results import Calibration, ColumnDrift
from churnops.monitor.stattests import TestResult, get_stattest, total_variation, wasserstein_1d, weighted_std


class TestInputs(Protocol):
    """What :class:`churnops.monitor.drift.TestInputs` offers (the samples a test consumes)."""

    @property
    def reference(self) -> NDArray[Any]: ...
    @property
    def current(self) -> NDArray[Any]: ...
    @property
    def column_type(self) -> str: ...
    @property
    def reference_weights(self) -> NDArray[np.int64] | None: ...
    @property
    def current_weights(self) -> NDArray[np.int64] | None: ...

    def label_counts(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]: ...

    def n_unique(self, cap: int | None = None) -> int: ...


FEW_VALUES = 20
"""Numerical columns with at most this many distinct values (both samples together) are tested
with the chi-squared test on their values' counts: with heavy ties the asymptotic
Kolmogorov-Smirnov p-value is conservative, the chi-squared one is not."""
MIN_EXPECTED = 5.0
"""A chi-squared table with a cell expected to hold fewer rows (in the smaller sample) gets a
simulated p-value instead of the chi-squared approximation."""
FALSE_ALARM_DRAWS = 20_000
"""Simulated no-drift runs behind :func:`false_alarm_rate` (standard error about 0.0015 at 5%)."""
FALSE_ALARM_SEED = 20261204


def normed_distance(inputs: Any, evidently_value: float | None = None) -> float:
    """The change of a numerical column in standard deviations of the reference: the Wasserstein
    distance divided by the reference's standard deviation, at any scale (values near 1e300 or
    1e-300 are rescaled first, so that neither overflows nor vanishes). Only a constant reference
    column (no deviation at all) is measured against Evidently's floor of 0.001.
    ``evidently_value``: Evidently's normed Wasserstein, already computed, used when the two agree
    (a deviation of at least 0.001, an ordinary scale).

    >>> import numpy as np
    >>> class Inputs:
    ...     reference_weights = current_weights = None
    ...     def __init__(self, ref, cur): self.reference, self.current = np.array(ref), np.array(cur)
    >>> normed_distance(Inputs([0.0, 2.0], [1.0, 3.0]))
    1.0
    >>> round(normed_distance(Inputs([0.0, 2e300], [1e300, 3e300])), 9)
    1.0
    >>> round(normed_distance(Inputs([0.0, 2e-300], [1e-300, 3e-300])), 9)
    1.0
    """
    reference, current = inputs.reference, inputs.current
    weights = inputs.reference_weights, inputs.current_weights
    largest = max((float(np.max(np.abs(a))) for a in (reference, current) if len(a)), default=0.0)
    scale = largest if (largest > 1e100 or 0.0 < largest < 1e-100) else 1.0
    if scale != 1.0:
        reference, current = reference / scale, current / scale
    deviation = weighted_std(reference, weights[0])
    if evidently_value is not None and scale == 1.0 and deviation >= 0.001:
        return float(evidently_value)
    distance = wasserstein_1d(reference, current, *weights)
    if deviation > 0:
        return float(distance / deviation)
    return float(distance * scale / 0.001)


def uses_ks(inputs: TestInputs) -> bool:
    """Whether :func:`evidence` tests the column with Kolmogorov-Smirnov (numbers with more than
    :data:`FEW_VALUES` distinct values)."""
    return inputs.column_type != "categorical" and inputs.n_unique(cap=FEW_VALUES + 1) > FEW_VALUES


def evidence(
    inputs: TestInputs, own_test: str, own: TestResult, ks_result: TestResult | None = None
) -> tuple[str, float, float, str]:
    """(test, p-value, effect, effect name) of one column, from the samples a test consumes.

    ``own_test``/``own`` are the column's Evidently test and result: reused when they are the
    same computation (a KS p-value, a normed Wasserstein distance). ``ks_result``: the column's
    KS test when already computed with its own test (:func:`~churnops.monitor.stattests.wasserstein_and_ks`).
    """
    if inputs.column_type == "categorical":
        ref_counts, cur_counts = inputs.label_counts()
        return (
            "chi2",
            chi2_homogeneity(ref_counts, cur_counts),
            total_variation(ref_counts, cur_counts),
            "total_variation",
        )
    effect = normed_distance(inputs, own.statistic if own_test == "wasserstein" else None)
    if not uses_ks(inputs):
        ref_counts, cur_counts = _value_counts(inputs)
        return "chi2", chi2_homogeneity(ref_counts, cur_counts), float(effect), "normed_wasserstein"
    result = own
    if ks_result is not None:
        result = ks_result
    elif own_test != "ks" or own.p_value is None:
        result = get_stattest("ks").func(
            inputs.reference, inputs.current, inputs.reference_weights, inputs.current_weights
        )
    p_value = result.p_value if result.p_value is not None else 1.0
    return "ks", float(p_value), float(effect), "normed_wasserstein"


def _value_counts(inputs: TestInputs) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Counts of each distinct value of a numerical column, both samples on the same values."""

    def counts(values: NDArray[Any], weights: NDArray[np.int64] | None) -> tuple[NDArray[Any], NDArray[Any]]:
        if weights is None:
            return np.unique(values, return_counts=True)
        return values, weights

    ref_values, ref_counts = counts(inputs.reference, inputs.reference_weights)
    cur_values, cur_counts = counts(inputs.current, inputs.current_weights)
    points = distinct(np.concatenate((ref_values, cur_values)))
    ref = np.zeros(points.size, np.int64)
    cur = np.zeros(points.size, np.int64)
    np.add.at(ref, np.searchsorted(points, ref_values), ref_counts)
    np.add.at(cur, np.searchsorted(points, cur_values), cur_counts)
    return ref, cur


def chi2_homogeneity(reference: NDArray[np.int64], current: NDArray[np.int64]) -> float:
    """p-value of Pearson's chi-squared test that two count vectors come from one distribution.

    When every cell is expected to hold at least :data:`MIN_EXPECTED` rows in the smaller sample
    the statistic's chi-squared distribution holds and gives the p-value. Otherwise (rare
    categories, values present on one side only) the p-value is that of the same statistic under
    random relabelling of the rows with both samples' totals fixed, simulated
    (:func:`_relabelled_p_value`): pooling the rare cells instead would let a category that
    vanished cancel one that appeared. One cell: nothing to compare, p = 1.

    >>> chi2_homogeneity(np.array([50, 50]), np.array([50, 50]))
    1.0
    >>> round(chi2_homogeneity(np.array([60, 40]), np.array([40, 60])), 4)  # scipy: 0.0047
    0.0047
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    n, m = ref.sum(), cur.sum()
    if n <= 0 or m <= 0:
        return 1.0
    used = (ref + cur) > 0
    ref, cur = ref[used], cur[used]
    if ref.size < 2:
        return 1.0
    totals = ref + cur
    expected_cur = totals * (m / (n + m))
    weights = 1.0 / expected_cur + 1.0 / (totals * (n / (n + m)))
    statistic = float(np.sum((cur - expected_cur) ** 2 * weights))
    if float(totals.min()) * (min(n, m) / (n + m)) >= MIN_EXPECTED:
        from scipy.special import chdtrc

        return float(min(max(chdtrc(ref.size - 1, statistic), 0.0), 1.0))
    return _relabelled_p_value(totals.astype(np.int64), int(m), expected_cur, weights, statistic)


RELABEL_DRAWS = 20_000
"""At most this many random relabellings behind a sparse table's p-value (smallest p about 5e-5)."""
RELABEL_EXCEEDANCES = 20
"""Relabelling stops once this many draws reach the observed statistic (Besag-Clifford)."""
RELABEL_CELL_BUDGET = 4_000_000
"""Cells drawn at most per column (draws x categories), so a wide table costs about half a second."""
RELABEL_MIN_DRAWS = 100
"""Draws however wide the table: a column of tens of thousands of rare categories gets a coarse
p-value (at least 1/101), not minutes of drawing."""


def _relabelled_p_value(
    totals: NDArray[np.int64], m: int, expected_cur: NDArray[np.float64], weights: NDArray[np.float64], observed: float
) -> float:
    """Monte Carlo p-value of the chi-squared statistic with the table's margins fixed.

    Each draw deals the current sample's ``m`` rows among the cells at random (a multivariate
    hypergeometric draw: which rows are "current" is a random relabelling, the null hypothesis).
    Sequential: it stops after :data:`RELABEL_EXCEEDANCES` draws at least as extreme as the
    observed table (p = exceedances / draws, a valid p-value under that stopping rule), else at
    the draw limit (p = (exceedances + 1) / (draws + 1)). The generator's seed is the table
    itself, so a table always gets the same p-value (exact, streaming and cached runs agree).
    """
    import zlib

    limit = max(RELABEL_MIN_DRAWS, min(RELABEL_DRAWS, RELABEL_CELL_BUDGET // max(int(totals.size), 1)))
    rng = np.random.default_rng(zlib.crc32(totals.tobytes() + np.int64(m).tobytes()))
    threshold = observed * (1.0 - 1e-9)
    drawn = exceeded = 0
    while drawn < limit:
        size = min(1_000, limit - drawn)
        draws = rng.multivariate_hypergeometric(totals, m, size=size, method="marginals")
        hits = ((draws - expected_cur) ** 2 @ weights) >= threshold
        found = int(hits.sum())
        if exceeded + found >= RELABEL_EXCEEDANCES:
            at = int(np.flatnonzero(np.cumsum(hits) == RELABEL_EXCEEDANCES - exceeded)[0])
            return float(RELABEL_EXCEEDANCES / (drawn + at + 1))
        exceeded += found
        drawn += size
    return float((exceeded + 1) / (drawn + 1))


def bh_adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (a column is discovered when its value <= fdr).

    A missing p-value (NaN) counts as 1.

    >>> bh_adjust([0.01, 0.04, 0.03, 0.5])
    [0.04, 0.05333333333333334, 0.05333333333333334, 0.5]
    """
    values = np.nan_to_num(np.asarray(p_values, dtype=np.float64), nan=1.0)
    m = values.size
    if m == 0:
        return []
    order = np.argsort(values, kind="stable")
    scaled = values[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1].clip(max=1.0)
    out = np.empty(m)
    out[order] = adjusted
    return [float(v) for v in out]


def calibrate(
    inputs: TestInputs,
    own_test: str,
    own: TestResult,
    evidently_says: bool,
    fdr: float,
    min_effect: float,
    ks_result: TestResult | None = None,
) -> Calibration:
    """The calibration of one column, decided as a family of one (see :func:`adjust`)."""
    test, p_value, effect, effect_name = evidence(inputs, own_test, own, ks_result)
    return Calibration(
        test=test,
        p_value=p_value,
        effect=effect,
        effect_name=effect_name,
        evidently_drift_detected=evidently_says,
        adjusted_p_value=p_value,
        fdr=fdr,
        min_effect=min_effect,
    )


def adjust(columns: list[ColumnDrift]) -> list[ColumnDrift]:
    """Columns tested together, with their p-values adjusted across them and decided again.

    Columns without a calibration (not tested: every current value missing) keep their verdict
    and are not part of the family.
    """
    family = [(i, c.calibration) for i, c in enumerate(columns) if c.calibration is not None]
    adjusted = bh_adjust([calibration.p_value for _, calibration in family])
    out = list(columns)
    for (i, calibration), value in zip(family, adjusted, strict=True):
        decided = replace(calibration, adjusted_p_value=value)
        out[i] = replace(columns[i], calibration=decided, drift_detected=decided.drift_detected)
    return out


def needed_columns(n_columns: int, share_threshold: float) -> int:
    """How many drifted columns make the share exceed ``share_threshold``.

    >>> needed_columns(16, 0.1), needed_columns(10, 0.1), needed_columns(16, 0.0)
    (2, 2, 1)
    """
    needed = math.floor(share_threshold * n_columns) + 1
    while needed > 1 and (needed - 1) / n_columns > share_threshold:
        needed -= 1
    return needed


def false_alarm_rate(groups: int | Sequence[int], share_threshold: float, fdr: float) -> float:
    """The chance that the data rule fires when nothing drifted: some group of columns (the
    whole batch's, then each segment's) has more than ``share_threshold`` of its columns
    drifted, all of them adjusted together - for independent columns, before the effect floor
    (which only removes alarms).

    When one drifted column anywhere is enough it is ``fdr`` exactly (under no drift at all,
    Benjamini-Hochberg discovers anything with probability ``fdr``); otherwise it is estimated
    from :data:`FALSE_ALARM_DRAWS` simulated runs (fixed seed: the same answer every run).

    >>> false_alarm_rate(16, 0.0, 0.05)
    0.05
    >>> false_alarm_rate(16, 0.1, 0.05) < 0.01
    True
    >>> false_alarm_rate([16, 15, 15], 0.1, 0.05) <= 0.05
    True
    """
    sizes = [groups] if isinstance(groups, int) else [size for size in groups if size > 0]
    sizes = [size for size in sizes if size > 0]
    if not sizes:
        return 0.0
    needed = np.array([needed_columns(size, share_threshold) for size in sizes])
    if bool((needed > np.array(sizes)).all()):
        return 0.0
    if bool((needed == 1).all()):
        return fdr
    total = sum(sizes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rng = np.random.default_rng(FALSE_ALARM_SEED)
    critical = fdr * np.arange(1, total + 1) / total
    rows = max(1, 2_000_000 // total)
    alarms = 0
    done = 0
    while done < FALSE_ALARM_DRAWS:
        size = min(rows, FALSE_ALARM_DRAWS - done)
        p_values = rng.random((size, total))
        below = np.sort(p_values, axis=1) <= critical
        # discoveries: the largest rank whose p-value is under its critical value
        found = np.where(below.any(axis=1), total - np.argmax(below[:, ::-1], axis=1), 0)
        rejected = p_values <= (fdr * found / total)[:, None]
        per_group = np.add.reduceat(rejected, starts, axis=1)
        alarms += int(np.count_nonzero((per_group >= needed).any(axis=1)))
        done += size
    return alarms / FALSE_ALARM_DRAWS
