"""Per-column drift and the dataset drift verdicts built on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from churnops.monitor.columns import ColumnPlan
from churnops.monitor.prepare import CategoricalSample, NumericalSample, align_categories
from churnops.monitor.results import ColumnDrift, DatasetDrift
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.stattests import (
    StatTestSpec,
    TestResult,
    default_test_name,
    drift_score,
    get_stattest,
    is_drift,
)
from churnops.monitor.summaries import categorical_distribution, numerical_distribution, summarize


class ColumnTestError(ValueError):
    """A configured test cannot run on this column (wrong type, degenerate data)."""


@dataclass(frozen=True)
class TestInputs:
    """The two samples in the form a test consumes, and the test's column type."""

    reference: np.ndarray
    current: np.ndarray
    column_type: str
    labels: list[Any] | None = None

    __test__ = False

    @property
    def n_unique(self) -> int:
        """Distinct values of both samples together (Evidently's ``n_values``)."""
        if self.labels is not None:
            return len(self.labels)
        return int(np.unique(np.concatenate([self.reference, self.current])).size)


def test_inputs(
    reference: NumericalSample | CategoricalSample, current: NumericalSample | CategoricalSample
) -> TestInputs:
    """Arrays for the tests: sorted finite values, or codes on the union of categories."""
    if isinstance(reference, NumericalSample) and isinstance(current, NumericalSample):
        return TestInputs(reference.values, current.values, "numerical")
    if isinstance(reference, CategoricalSample) and isinstance(current, CategoricalSample):
        ref_codes, cur_codes, labels = align_categories(reference, current)
        return TestInputs(ref_codes, cur_codes, "categorical", labels)
    raise TypeError("reference and current samples must be of the same kind")


def choose_test(plan: ColumnPlan, inputs: TestInputs, settings: MonitorSettings) -> StatTestSpec:
    """The configured test for the column, else Evidently's default for its size and values."""
    configured = settings.method_for(plan.name, inputs.column_type)
    if configured is None:
        name = default_test_name(inputs.column_type, len(inputs.reference), inputs.n_unique)
        return get_stattest(name)
    spec = get_stattest(configured)
    if inputs.column_type not in spec.column_types:
        allowed = " or ".join(sorted(spec.column_types))
        raise ColumnTestError(
            f"test '{spec.name}' applies to {allowed} columns, but '{plan.name}' is {inputs.column_type}"
        )
    return spec


def run_test(spec: StatTestSpec, inputs: TestInputs, settings: MonitorSettings) -> TestResult:
    """Run a registered test with the parameters it declares."""
    available = {"column_type": inputs.column_type, "binning": settings.binning, "n_bins": settings.n_bins}
    params = {name: available[name] for name in spec.params if name in available}
    try:
        return spec.func(inputs.reference, inputs.current, **params)
    except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
        raise ColumnTestError(f"test '{spec.name}' failed: {exc}") from None


def column_drift(
    plan: ColumnPlan,
    reference: NumericalSample | CategoricalSample,
    current: NumericalSample | CategoricalSample,
    settings: MonitorSettings,
) -> ColumnDrift:
    """Test one column and summarize both samples.

    Raises
    ------
    ColumnTestError
        When the configured test does not fit the column, or a sample is empty.
    """
    inputs = test_inputs(reference, current)
    if inputs.reference.size == 0 or inputs.current.size == 0:
        side = "reference" if inputs.reference.size == 0 else "current"
        raise ColumnTestError(f"column '{plan.name}' has no usable value in the {side} data")
    spec = choose_test(plan, inputs, settings)
    threshold = settings.threshold_for(plan.name, inputs.column_type, spec)
    result = run_test(spec, inputs, settings)
    if inputs.labels is not None:
        distribution = categorical_distribution(inputs.reference, inputs.current, inputs.labels)
    else:
        distribution = numerical_distribution(inputs.reference, inputs.current)
    return ColumnDrift(
        name=plan.name,
        role=plan.role,
        column_type=plan.column_type,
        test=spec.name,
        kind=spec.kind,
        statistic=result.statistic,
        p_value=result.p_value,
        threshold=threshold,
        drift_detected=is_drift(result, spec, threshold),
        drift_score=drift_score(result, spec),
        reference=summarize(reference),
        current=summarize(current),
        distribution=distribution,
        type_source="config" if plan.declared else "inferred",
    )


def dataset_drift(columns: list[ColumnDrift], settings: MonitorSettings) -> DatasetDrift:
    """Share of drifted feature columns; trigger when it exceeds the dataset threshold.

    >>> dataset_drift([], MonitorSettings()).score
    0.0
    """
    features = [c for c in columns if c.role == "feature"]
    drifted = [c.name for c in features if c.drift_detected]
    share = len(drifted) / len(features) if features else 0.0
    return DatasetDrift(
        score=share,
        threshold=settings.dataset_drift_threshold,
        detected=share > settings.dataset_drift_threshold,
        drifted_columns=drifted,
        n_columns=len(features),
        evidently_drift_share=settings.evidently_drift_share,
        evidently_detected=bool(features) and share >= settings.evidently_drift_share,
    )
