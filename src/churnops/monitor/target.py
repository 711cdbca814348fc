"""Target drift: for a two-valued label, the positive rate with a two-proportion test and CI."""

from __future__ import annotations

import math

import numpy as np

from churnops.monitor.columns import ColumnPlan
from churnops.monitor.drift import ColumnTestError, column_drift
from churnops.monitor.prepare import CategoricalSample, NumericalSample, align_category_counts
from churnops.monitor.results import TargetDrift
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.stattests import get_stattest, is_drift
from churnops.monitor.summaries import label_text

Z_95 = 1.959963984540054


def rate_difference_ci(p1: float, n1: int, p2: float, n2: int, z: float = Z_95) -> tuple[float, float]:
    """Wald interval of ``p2 - p1`` (unpooled variances).

    >>> lo, hi = rate_difference_ci(0.20, 20_000, 0.245, 10_000)
    >>> round(lo, 4), round(hi, 4)
    (0.0349, 0.0551)
    """
    half = z * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    diff = p2 - p1
    return diff - half, diff + half


def target_drift(
    plan: ColumnPlan,
    reference: NumericalSample | CategoricalSample,
    current: NumericalSample | CategoricalSample,
    settings: MonitorSettings,
) -> TargetDrift:
    """Compare the label of both datasets.

    A label with two values (churned or not) gets the pooled two-proportion z-test, the rate
    of the larger label value in each dataset, and a 95% interval of their difference. Any
    other label falls back to the column's drift test.

    The target's z statistic has the sign of the change, current minus reference (a rising
    churn rate gives a positive z), like ``difference`` and ``ci95``. The shared z-test keeps
    Evidently's reference-minus-current sign for feature columns, so it is negated here; the
    two-sided p-value depends on ``|z|`` only and is unchanged.
    """
    note = None
    if isinstance(reference, CategoricalSample) and isinstance(current, CategoricalSample):
        if 1 <= len(reference.labels) <= 2 and set(current.labels) - set(reference.labels):
            # values the reference's label never took (50000 in a 0/1 column) are data errors,
            # counted by data quality; the rate is measured on the labels that exist
            keep = [i for i, label in enumerate(current.labels) if label in set(reference.labels)]
            dropped = int(current.count - current.counts[keep].sum())
            note = f"{dropped} values the reference's label never took were left out (see data quality)"
            current = CategoricalSample(
                [current.labels[i] for i in keep],
                current.counts[keep],
                current.rows,
                current.missing,
                current.unparsable,
            )
        ref_counts, cur_counts, labels = align_category_counts(reference, current)
        n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
        if 1 <= len(labels) <= 2 and n1 and n2:
            spec = get_stattest("z")
            keys = np.arange(len(labels), dtype=np.int64)
            result = spec.func(keys, keys, reference_weights=ref_counts, current_weights=cur_counts)
            positive = len(labels) - 1
            p1 = float(ref_counts[positive]) / n1
            p2 = float(cur_counts[positive]) / n2
            threshold = settings.target_significance
            return TargetDrift(
                column=plan.name,
                test=spec.name,
                statistic=0.0 - result.statistic,  # current minus reference; 0.0 - 0.0 is not -0.0
                p_value=result.p_value,
                threshold=threshold,
                drift_detected=is_drift(result, spec, threshold),
                positive_label=label_text(labels[positive]),
                reference_rate=p1,
                current_rate=p2,
                difference=p2 - p1,
                ci95=rate_difference_ci(p1, n1, p2, n2),
                note=note,
            )
    try:
        drift = column_drift(plan, reference, current, settings)
    except ColumnTestError as exc:
        return TargetDrift(plan.name, "none", float("nan"), None, 0.0, False, note=str(exc))
    return TargetDrift(
        column=plan.name,
        test=drift.test,
        statistic=drift.statistic,
        p_value=drift.p_value,
        threshold=drift.threshold,
        drift_detected=drift.drift_detected,
    )
