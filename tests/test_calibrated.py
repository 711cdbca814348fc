"""The calibrated verdict: its tests against scipy, its false-alarm rate, its effect floor, the
Benjamini-Hochberg adjustment, and the command line, report and JSON around it."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import jsonschema
import numpy as np
import polars as pl
import pytest
from scipy import stats

from churnops.config import Config
from churnops.monitor.calibrated import (
    MIN_EXPECTED,
    bh_adjust,
    chi2_homogeneity,
    false_alarm_rate,
    needed_columns,
)
from churnops.monitor.engine import monitor_frames
from churnops.monitor.settings import MonitorSettings, settings_from_config
from churnops.report.metrics import metrics_schema

CALIBRATED = MonitorSettings(target=None, verdict="calibrated")


def test_chi2_homogeneity_is_scipys_contingency_test_when_no_cell_is_rare():
    rng = np.random.default_rng(7)
    for _ in range(200):
        k = int(rng.integers(2, 12))
        reference = rng.integers(20, 400, size=k)
        current = rng.integers(20, 400, size=k)
        expected = stats.chi2_contingency(np.vstack([reference, current]), correction=False).pvalue
        assert chi2_homogeneity(reference, current) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def _exact_relabelling_p(reference, current):
    """Exact permutation p-value of the chi-squared statistic of a small 2 x k table (enumeration)."""
    from itertools import product

    totals = np.asarray(reference) + np.asarray(current)
    m = int(np.sum(current))

    def statistic(cur):
        n_all = totals.sum()
        e_cur = totals * m / n_all
        e_ref = totals * (n_all - m) / n_all
        return float(np.sum((cur - e_cur) ** 2 * (1 / e_cur + 1 / e_ref)))

    observed = statistic(np.asarray(current))
    p = 0.0
    for cur in product(*(range(t + 1) for t in totals)):
        if sum(cur) != m:
            continue
        weight = np.prod([math.comb(int(t), int(c)) for t, c in zip(totals, cur, strict=True)]) / math.comb(
            int(totals.sum()), m
        )
        if statistic(np.asarray(cur)) >= observed * (1 - 1e-9):
            p += weight
    return p


@pytest.mark.parametrize(
    ("reference", "current"),
    [([12, 3, 1, 0], [6, 1, 2, 4]), ([9, 9, 2], [9, 8, 3]), ([15, 1, 0, 0], [8, 0, 3, 3])],
)
def test_chi2_homogeneity_of_a_sparse_table_is_the_relabelling_p_value(reference, current):
    # a cell expected below MIN_EXPECTED: the chi-squared approximation does not hold; the
    # simulated p-value matches the exact enumeration within its Monte Carlo error
    exact = _exact_relabelling_p(reference, current)
    simulated = chi2_homogeneity(np.array(reference), np.array(current))
    assert simulated == pytest.approx(exact, abs=max(4 * math.sqrt(exact * (1 - exact) / 1_000), 2e-3))
    # the same table always gets the same p-value (exact, streaming and cached runs agree)
    assert chi2_homogeneity(np.array(reference), np.array(current)) == simulated


def test_chi2_homogeneity_does_not_let_new_categories_cancel_vanished_ones():
    # old codes retired, as many new codes introduced, each too rare for the approximation
    reference = np.array([500, 500] + [3] * 20 + [0] * 20)
    current = np.array([500, 500] + [0] * 20 + [3] * 20)
    assert chi2_homogeneity(reference, current) < 1e-4
    # no value in common at all
    assert chi2_homogeneity(np.array([3] * 10 + [0] * 10), np.array([0] * 10 + [3] * 10)) < 1e-4


def test_chi2_homogeneity_of_sparse_tables_keeps_its_false_alarm_rate():
    rng = np.random.default_rng(11)
    probs = np.r_[np.full(5, 0.18), np.full(20, 0.005)]
    p = np.array([chi2_homogeneity(rng.multinomial(300, probs), rng.multinomial(200, probs)) for _ in range(400)])
    # 400 null tables: a 5% test alarms 20 times on average (99.9% of the time between 7 and 36)
    assert 7 <= int((p <= 0.05).sum()) <= 36
    assert MIN_EXPECTED == 5.0


@pytest.mark.parametrize(
    ("reference", "current"),
    [([10, 0], [10, 0]), ([3], [4]), ([0, 0], [5, 5]), ([1, 1], [1, 1]), ([5, 5], [0, 0])],
)
def test_chi2_homogeneity_without_anything_to_compare_is_no_evidence(reference, current):
    assert chi2_homogeneity(np.array(reference), np.array(current)) == 1.0


def test_bh_adjust_is_scipys_false_discovery_control():
    rng = np.random.default_rng(3)
    for m in (1, 2, 5, 16, 100):
        p = rng.random(m) ** 3
        assert bh_adjust(list(p)) == pytest.approx(list(stats.false_discovery_control(p)), rel=1e-12)
    assert bh_adjust([]) == []
    assert bh_adjust([float("nan"), 0.01]) == [1.0, 0.02]


@pytest.mark.parametrize(("m", "needed_share"), [(2, 0.5), (3, 0.67)])
def test_false_alarm_rate_matches_the_exact_value_when_every_column_must_drift(m, needed_share):
    # Benjamini-Hochberg rejects all m hypotheses iff the largest p-value is <= fdr: prob fdr**m
    assert needed_columns(m, needed_share) == m
    assert false_alarm_rate(m, needed_share, 0.05) == pytest.approx(0.05**m, abs=0.0015)


def test_false_alarm_rate_of_the_any_column_rule_is_the_fdr():
    assert false_alarm_rate(16, 0.0, 0.05) == 0.05
    assert false_alarm_rate(0, 0.1, 0.05) == 0.0
    assert false_alarm_rate(16, 0.1, 0.05) == false_alarm_rate(16, 0.1, 0.05)  # deterministic
    assert false_alarm_rate(16, 0.1, 0.05) < 0.05


def _null_frames(rng: np.random.Generator, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    def frame() -> pl.DataFrame:
        return pl.DataFrame(
            {
                **{f"x{i}": rng.normal(size=n) for i in range(4)},
                "ints": rng.integers(0, 40, size=n),
                "few": rng.integers(0, 4, size=n).astype(float),
                "segment": rng.choice(["a", "b", "c", "d", "e"], size=n, p=[0.4, 0.3, 0.2, 0.07, 0.03]),
                "rare": rng.choice(["x", "y", "z"], size=n, p=[0.97, 0.02, 0.01]),
            }
        )

    return frame(), frame()


def test_with_no_drift_the_calibrated_verdict_alarms_at_most_at_its_rate_evidentlys_does_not():
    """200 no-drift runs of 8 columns at 300 rows: any column drifting is the false alarm."""
    rng = np.random.default_rng(2026)
    settings = replace(CALIBRATED, dataset_drift_threshold=0.0)
    calibrated = evidently = 0
    p_values = []
    for _ in range(200):
        result = monitor_frames(*_null_frames(rng, 300), settings)
        calibrated += result.dataset_drift.detected
        evidently += any(c.calibration.evidently_drift_detected for c in result.columns)
        p_values += [c.calibration.p_value for c in result.columns]
    assert result.dataset_drift.expected_false_alarm_rate == 0.05
    # 5% of 200 = 10; 19 or more would happen with probability < 0.5% if the rate were 5%
    assert calibrated <= 18
    assert evidently > 40  # eight columns each tested at 0.05 (and chi-squared ignoring the reference's noise)
    # each column's p-value is (close to) uniform under no drift: never far too small
    assert 0.01 <= np.mean(np.array(p_values) <= 0.05) <= 0.065


def test_a_significant_but_tiny_change_is_reported_not_alarmed():
    rng = np.random.default_rng(11)
    n = 200_000
    reference = pl.DataFrame({"c": rng.choice(["a", "b"], size=n, p=[0.5, 0.5])})
    current = pl.DataFrame({"c": rng.choice(["a", "b"], size=n, p=[0.51, 0.49])})
    column = monitor_frames(reference, current, CALIBRATED).column("c")
    assert column.calibration.test == "chi2" and column.calibration.effect_name == "total_variation"
    assert column.calibration.significant and column.calibration.adjusted_p_value < 1e-6
    assert column.calibration.effect == pytest.approx(0.01, abs=0.003)
    assert not column.calibration.large_enough and not column.drift_detected
    lower = replace(CALIBRATED, min_effect=0.005)
    assert monitor_frames(reference, current, lower).column("c").drift_detected


def test_columns_are_decided_together_and_evidentlys_verdict_is_kept_beside():
    rng = np.random.default_rng(5)
    n = 5_000
    data = {f"x{i}": rng.normal(size=2 * n) for i in range(10)}
    reference = pl.DataFrame({k: v[:n] for k, v in data.items()})
    current = pl.DataFrame({k: v[n:] + (0.3 if k == "x0" else 0.0) for k, v in data.items()})
    calibrated = monitor_frames(reference, current, CALIBRATED)
    plain = monitor_frames(reference, current, MonitorSettings(target=None))
    for column in calibrated.columns:
        c = column.calibration
        assert c.test == "ks"
        assert c.p_value == pytest.approx(stats.ks_2samp(reference[column.name], current[column.name]).pvalue)
        assert c.effect == pytest.approx(plain.column(column.name).statistic)  # the normed Wasserstein distance
        assert c.evidently_drift_detected == plain.column(column.name).drift_detected
        assert column.statistic == plain.column(column.name).statistic  # Evidently's numbers unchanged
        assert plain.column(column.name).calibration is None
    adjusted = bh_adjust([c.calibration.p_value for c in calibrated.columns])
    assert [c.calibration.adjusted_p_value for c in calibrated.columns] == pytest.approx(adjusted)
    assert calibrated.dataset_drift.drifted_columns == ["x0"]
    assert calibrated.dataset_drift.verdict == "calibrated" and plain.dataset_drift.verdict == "evidently"
    assert "calibrated" not in plain.dataset_drift.to_dict() and "calibration" not in plain.columns[0].to_dict()


def test_numbers_with_few_values_are_tested_on_their_counts():
    rng = np.random.default_rng(9)
    reference = pl.DataFrame({"k": rng.integers(0, 4, size=3000).astype(float)})
    current = pl.DataFrame({"k": rng.integers(0, 4, size=2000).astype(float)})
    column = monitor_frames(reference, current, CALIBRATED).column("k")
    table = np.vstack(
        [np.bincount(reference["k"].cast(int), minlength=4), np.bincount(current["k"].cast(int), minlength=4)]
    )
    assert column.calibration.test == "chi2" and column.calibration.effect_name == "normed_wasserstein"
    assert column.calibration.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)


def test_a_column_with_no_current_value_stays_drifted_outside_the_family():
    reference = pl.DataFrame({"a": [1.0, 2.0, 3.0] * 100, "b": [1.0, 2.0, 3.0] * 100})
    current = pl.DataFrame({"a": [None] * 300, "b": [1.0, 2.0, 3.0] * 100}, schema={"a": pl.Float64, "b": pl.Float64})
    result = monitor_frames(reference, current, CALIBRATED)
    assert result.column("a").drift_detected and result.column("a").calibration is None
    assert result.column("b").calibration.adjusted_p_value == result.column("b").calibration.p_value


def validate(path):
    document = json.loads(path.read_text())
    jsonschema.validate(document, metrics_schema())
    return document


def test_cli_calibrated_verdict_on_the_seed_batch(bank_workspace, cli):
    assert cli("generate").exit_code == 0
    result = cli("monitor", "--verdict", "calibrated")
    assert result.exit_code == 0, result.output
    assert "data drift: 3 of 16 columns drifted" in result.output
    metrics = validate(bank_workspace / "monitoring" / "monitoring_metrics.json")
    drift = metrics["dataset_drift"]
    assert metrics["schema_version"] == "1.3"
    assert drift["verdict"] == "calibrated" and set(drift["drifted_columns"]) == {"Balance", "Credit Score", "Income"}
    assert drift["calibrated"]["fdr"] == 0.05 and drift["calibrated"]["min_effect"] == 0.02
    assert 0 < drift["calibrated"]["expected_false_alarm_rate"] < 0.01  # 2 of 16 columns needed
    balance = metrics["columns"]["Balance"]
    assert balance["calibration"]["test"] == "ks" and balance["calibration"]["significant"]
    assert metrics["columns"]["Gender"]["calibration"]["test"] == "chi2"
    assert metrics["settings"]["verdict"] == "calibrated"
    page = (bank_workspace / "monitoring" / "monitoring_report.html").read_text()
    assert "Calibrated verdict" in page and "p (adjusted)" in page and "Evidently's rule" in page


def test_cli_evidently_verdict_is_the_default_and_unchanged(bank_workspace, cli):
    assert cli("generate").exit_code == 0
    assert cli("monitor").exit_code == 0
    metrics = validate(bank_workspace / "monitoring" / "monitoring_metrics.json")
    assert metrics["dataset_drift"]["verdict"] == "evidently" and "calibrated" not in metrics["dataset_drift"]
    assert all("calibration" not in c for c in metrics["columns"].values())
    page = (bank_workspace / "monitoring" / "monitoring_report.html").read_text()
    assert "Calibrated verdict" not in page


def test_calibrated_streaming_gives_the_exact_engines_p_values(bank_workspace, cli):
    assert cli("generate").exit_code == 0
    runs = {}
    for mode in ("exact", "streaming"):
        assert cli("monitor", "--verdict", "calibrated", "--mode", mode, "--no-cache").exit_code == 0
        runs[mode] = json.loads((bank_workspace / "monitoring" / "monitoring_metrics.json").read_text())
    assert runs["streaming"]["mode"]["current"] == "streaming"
    for name, column in runs["exact"]["columns"].items():
        other = runs["streaming"]["columns"][name]["calibration"]
        assert other["p_value"] == pytest.approx(column["calibration"]["p_value"], rel=1e-9, abs=1e-15), name
        assert other["effect"] == pytest.approx(column["calibration"]["effect"], rel=1e-9), name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--verdict", "bayesian"), "drift.verdict: Input should be 'evidently' or 'calibrated'"),
        (("--verdict", "calibrated", "--set", "drift.fdr=1"), "drift.fdr: Input should be less than 1"),
        (("--verdict", "calibrated", "--set", "drift.min_effect=-1"), "drift.min_effect"),
        (("--verdict", "calibrated", "--engine", "evidently"), "needs the native, dask or spark engine"),
    ],
)
def test_cli_refuses_bad_verdict_settings_in_one_line(bank_workspace, cli, args, message):
    assert cli("generate").exit_code == 0
    result = cli("monitor", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error")]) == 1
    assert not (bank_workspace / "monitoring" / "monitoring_metrics.json").exists()


def test_config_file_sets_the_calibrated_verdict(tmp_path):
    config = Config.model_validate({"drift": {"verdict": "calibrated", "fdr": 0.01, "min_effect": 0.1}})
    settings = settings_from_config(config)
    assert (settings.verdict, settings.fdr, settings.min_effect) == ("calibrated", 0.01, 0.1)
