"""Per-column drift and the dataset drift verdicts built on it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from churnops.monitor.binning import distinct, n_distinct, total
from churnops.monitor.calibrated import adjust, calibrate, false_alarm_rate, uses_ks
from churnops.monitor.columns import ColumnPlan
from churnops.monitor.prepare import CategoricalSample, NumericalSample, align_category_counts
from churnops.monitor.results import ColumnDrift, DatasetDrift, MonitoringResult, Segments
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.stattests import (
    StatTestSpec,
    TestResult,
    default_test_name,
    drift_score,
    get_stattest,
    is_drift,
    wasserstein_and_ks,
)
from churnops.monitor.summaries import categorical_distribution, numerical_distribution, summarize

EXPAND_LIMIT = 20_000_000
"""A test that needs every value gets at most this many (from a streaming sample's counts)."""


def weighted_tests() -> list[str]:
    """Tests that take samples as values with counts (what the streaming engine feeds them)."""
    from churnops.monitor.stattests import REGISTRY

    return [name for name, spec in REGISTRY.items() if "reference_weights" in spec.params and name == spec.name]


TVD_ESTIMATE = (
    "TVD p-value estimated from category counts (the streaming engine, or labels that are not integers); "
    "Evidently's permutes the rows and can differ by a few hundredths"
)


class ColumnTestError(ValueError):
    """A configured test cannot run on this column (wrong type, degenerate data)."""


@dataclass(frozen=True)
class TestInputs:
    """The two samples in the form a test consumes, and the test's column type.

    Numerical samples are sorted; ``*_weights`` are counts when a sample comes as distinct
    values (tests that declare weight parameters take them; the others get expanded values).
    """

    reference: np.ndarray
    current: np.ndarray
    column_type: str
    labels: list[Any] | None = None
    reference_weights: np.ndarray | None = None
    current_weights: np.ndarray | None = None

    __test__ = False

    @property
    def n_reference(self) -> int:
        return total(self.reference, self.reference_weights)

    @property
    def n_current(self) -> int:
        return total(self.current, self.current_weights)

    def n_unique(self, cap: int | None = None) -> int:
        """Distinct values of both samples together (Evidently's ``n_values``).

        With ``cap``, any answer of at least ``cap`` may stand for "``cap`` or more", which
        spares building the union of two large samples.
        """
        if self.labels is not None:
            return len(self.labels)
        ref_distinct = n_distinct(self.reference, self.reference_weights)
        cur_distinct = n_distinct(self.current, self.current_weights)
        if cap is not None and max(ref_distinct, cur_distinct) >= cap:
            return max(ref_distinct, cur_distinct)
        return int(distinct(np.concatenate((self.reference, self.current))).size)

    def label_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Counts per label (categorical inputs)."""
        assert self.labels is not None
        k = len(self.labels)
        return (
            np.bincount(self.reference, weights=self.reference_weights, minlength=k).astype(np.int64),
            np.bincount(self.current, weights=self.current_weights, minlength=k).astype(np.int64),
        )

    @property
    def weighted(self) -> bool:
        return self.reference_weights is not None or self.current_weights is not None

    def expanded(self) -> tuple[np.ndarray, np.ndarray]:
        """Both samples with every repeat spelled out."""

        def expand(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
            return values if weights is None else np.repeat(values, weights)

        return expand(self.reference, self.reference_weights), expand(self.current, self.current_weights)


def test_inputs(
    reference: NumericalSample | CategoricalSample, current: NumericalSample | CategoricalSample
) -> TestInputs:
    """Arrays for the tests: sorted finite values (or distinct values with counts), or every
    category of the union once, weighted by its count."""
    if isinstance(reference, NumericalSample) and isinstance(current, NumericalSample):
        return TestInputs(reference.values, current.values, "numerical", None, reference.weights, current.weights)
    if isinstance(reference, CategoricalSample) and isinstance(current, CategoricalSample):
        ref_counts, cur_counts, labels = align_category_counts(reference, current)
        keys = np.arange(len(labels), dtype=np.int64)
        return TestInputs(keys, keys, "categorical", labels, ref_counts, cur_counts)
    raise TypeError("reference and current samples must be of the same kind")


def row_ordered_inputs(reference: CategoricalSample, current: CategoricalSample) -> TestInputs | None:
    """Both samples' values in row order, as codes into the sorted union of their labels (what
    TVD's permutation test draws from); None unless both samples kept their codes."""
    if reference.codes is None or current.codes is None:
        return None
    _, _, labels = align_category_counts(reference, current)
    position = {label: i for i, label in enumerate(labels)}

    def recode(sample: CategoricalSample) -> np.ndarray:
        assert sample.codes is not None
        return np.array([position[label] for label in sample.labels], dtype=np.int64)[sample.codes]

    return TestInputs(recode(reference), recode(current), "categorical", labels)


def choose_test(plan: ColumnPlan, inputs: TestInputs, settings: MonitorSettings) -> StatTestSpec:
    """The configured test for the column, else Evidently's default for its size and values."""
    configured = settings.method_for(plan.name, inputs.column_type)
    if configured is None:
        # Evidently's rule only distinguishes 1-2, 3-5 and more than 5 distinct values.
        name = default_test_name(inputs.column_type, inputs.n_reference, inputs.n_unique(cap=6))
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
    available: dict[str, Any] = {
        "column_type": inputs.column_type,
        "binning": settings.binning,
        "n_bins": settings.n_bins,
        "reference_weights": inputs.reference_weights,
        "current_weights": inputs.current_weights,
        "labels": inputs.labels,
    }
    params = {name: available[name] for name in spec.params if name in available}
    takes_weights = "reference_weights" in spec.params
    if not takes_weights and inputs.weighted and inputs.n_reference + inputs.n_current > EXPAND_LIMIT:
        raise ColumnTestError(
            f"test '{spec.name}' needs every value, and this column has "
            f"{inputs.n_reference + inputs.n_current:,} (more than {EXPAND_LIMIT:,}); the streaming engine "
            f"computes {', '.join(sorted(weighted_tests()))} from its summaries"
        )
    reference, current = (inputs.reference, inputs.current) if takes_weights else inputs.expanded()
    try:
        return spec.func(reference, current, **params)
    except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
        raise ColumnTestError(f"test '{spec.name}' failed: {exc}") from None


def run_wasserstein_and_ks(inputs: TestInputs) -> tuple[TestResult, TestResult]:
    """The Wasserstein test and the KS test the calibrated verdict adds, from one merge of the
    samples (each the same as on its own)."""
    try:
        return wasserstein_and_ks(inputs.reference, inputs.current, inputs.reference_weights, inputs.current_weights)
    except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
        raise ColumnTestError(f"test 'wasserstein' failed: {exc}") from None


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
    if inputs.n_reference == 0 or inputs.n_current == 0:
        side = "reference" if inputs.reference.size == 0 else "current"
        raise ColumnTestError(f"column '{plan.name}' has no usable value in the {side} data")
    spec = choose_test(plan, inputs, settings)
    threshold = settings.threshold_for(plan.name, inputs.column_type, spec)
    counted = inputs
    note = None
    if spec.name == "TVD" and isinstance(reference, CategoricalSample) and isinstance(current, CategoricalSample):
        ordered = row_ordered_inputs(reference, current)
        if ordered is not None:
            inputs = ordered
        else:
            note = TVD_ESTIMATE
    ks_result = None
    if settings.verdict == "calibrated" and spec.name == "wasserstein" and uses_ks(inputs):
        result, ks_result = run_wasserstein_and_ks(inputs)
    else:
        result = run_test(spec, inputs, settings)
    drifted = is_drift(result, spec, threshold)
    calibration = None
    if settings.verdict == "calibrated":
        calibration = calibrate(counted, spec.name, result, drifted, settings.fdr, settings.min_effect, ks_result)
        drifted = calibration.drift_detected
    if inputs.labels is not None:
        ref_counts, cur_counts = inputs.label_counts()
        distribution = categorical_distribution(ref_counts, cur_counts, inputs.labels)
    else:
        distribution = numerical_distribution(reference, current)  # type: ignore[arg-type]
    return ColumnDrift(
        name=plan.name,
        role=plan.role,
        column_type=plan.column_type,
        test=spec.name,
        kind=spec.kind,
        statistic=result.statistic,
        p_value=result.p_value,
        threshold=threshold,
        drift_detected=drifted,
        drift_score=drift_score(result, spec),
        reference=summarize(reference),
        current=summarize(current),
        distribution=distribution,
        type_source="config" if plan.declared else "inferred",
        note=note,
        calibration=calibration,
    )


def adjust_columns(
    columns: list[ColumnDrift], segments: Segments | None = None
) -> tuple[list[ColumnDrift], Segments | None]:
    """Feature columns (and every segment's) decided together: with the calibrated verdict,
    their p-values are adjusted across all of them (Benjamini-Hochberg) and each decided again;
    else unchanged."""
    groups = segments.groups if segments is not None else []
    family = columns + [c for g in groups for c in g.columns]
    if not any(c.calibration is not None for c in family):
        return columns, segments
    adjusted = adjust(family)
    out, position = adjusted[: len(columns)], len(columns)
    new_groups = []
    for group in groups:
        new_groups.append(replace(group, columns=adjusted[position : position + len(group.columns)]))
        position += len(group.columns)
    return out, (replace(segments, groups=new_groups) if segments is not None else None)


def dataset_drift(
    columns: list[ColumnDrift], settings: MonitorSettings, segments: Segments | None = None
) -> DatasetDrift:
    """Share of drifted feature columns; trigger when it exceeds the dataset threshold.

    With the calibrated verdict, ``columns`` must have been through :func:`adjust_columns`.

    >>> dataset_drift([], MonitorSettings()).score
    0.0
    """
    features = [c for c in columns if c.role == "feature"]
    drifted = [c.name for c in features if c.drift_detected]
    share = len(drifted) / len(features) if features else 0.0
    calibrated = settings.verdict == "calibrated"
    return DatasetDrift(
        verdict=settings.verdict,
        fdr=settings.fdr if calibrated else None,
        min_effect=settings.min_effect if calibrated else None,
        expected_false_alarm_rate=(
            false_alarm_rate(
                [len(features), *(len(g.columns) for g in (segments.groups if segments else []) if g.tested)],
                settings.dataset_drift_threshold,
                settings.fdr,
            )
            if calibrated
            else None
        ),
        score=share,
        threshold=settings.dataset_drift_threshold,
        detected=share > settings.dataset_drift_threshold,
        drifted_columns=drifted,
        n_columns=len(features),
        evidently_drift_share=settings.evidently_drift_share,
        evidently_detected=bool(features) and share >= settings.evidently_drift_share,
    )


def with_any_finding_rate(result: MonitoringResult, settings: MonitorSettings) -> MonitoringResult:
    """``result`` with the chance of any data finding under no drift, when time chunks or the
    multivariate detectors add findings of their own to the dataset rule's (calibrated verdict).

    Each family has its own false-alarm rate: the dataset rule's (columns and segments), the
    chunks' rule (their columns adjusted together, like the batch's), the detectors' (at most
    ``fdr``: two tests at ``fdr / 2``); a run raises a finding when any does.
    """
    drift = result.dataset_drift
    if drift.expected_false_alarm_rate is None or (result.chunks is None and result.multivariate is None):
        return result
    quiet = 1.0 - drift.expected_false_alarm_rate
    if result.chunks is not None:
        sizes = [len(g.columns) for g in result.chunks.groups if g.tested]
        quiet *= 1.0 - false_alarm_rate(sizes, settings.dataset_drift_threshold, settings.fdr)
    multivariate = result.multivariate
    if multivariate is not None:
        running = [d for d in (multivariate.domain_classifier, multivariate.pca_reconstruction) if d is not None]
        quiet *= 1.0 - min(1.0, sum(d.threshold for d in running))
    return replace(result, dataset_drift=replace(drift, any_finding_false_alarm_rate=1.0 - quiet))
