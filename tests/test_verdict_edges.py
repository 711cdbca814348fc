"""Edges of the calibrated verdict, the detectors and the chunks that ordinary data never reaches:
true/false written as text in one file and read as booleans in the other, a few value
combinations repeated thousands of times, categories beyond what the classifier takes, values
near the ends of the floats, a time column, dates that a wrong format cannot read, and the chance
of any finding when chunks and detectors add their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from churnops.config import Config
from churnops.monitor.engine import monitor_frames
from churnops.monitor.multivariate import MAX_CATEGORIES, RowSampler
from churnops.monitor.settings import settings_from_config

CALIBRATED = replace(settings_from_config(Config()), verdict="calibrated", target=None, declared_types={})


def churnops(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "churnops", *args], cwd=root, capture_output=True, text=True, timeout=300, env=env
    )


def metrics(root: Path) -> dict:
    return json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())


def _flags(rng: np.random.Generator, n: int, odd: bool) -> list[str]:
    values = np.where(rng.random(n) < 0.5, "True", "False").tolist()
    if odd:
        values[0] = "unknown"  # one value that is not true/false: the file's column is read as text
    return values


@pytest.mark.parametrize("odd_in", ["reference", "current"])
@pytest.mark.parametrize("mode", ["exact", "streaming"])
def test_true_false_text_in_one_file_meets_booleans_in_the_other(tmp_path, odd_in, mode):
    rng = np.random.default_rng(1)
    for name in ("reference", "current"):
        pl.DataFrame({"x": rng.normal(size=3_000), "flag": _flags(rng, 3_000, odd=name == odd_in)}).write_csv(
            tmp_path / f"{name}.csv"
        )
    done = churnops(
        tmp_path, "monitor", "--no-cache", "--mode", mode, "--verdict", "calibrated",
        "-r", "reference.csv", "-p", "current.csv", "--set", "columns.target=",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = metrics(tmp_path)
    flag = found["columns"]["flag"]
    assert flag["drift_detected"] is False, flag  # the same true/false shares: no drift
    assert flag["drift_score"] < 0.05
    assert "internal error" not in done.stderr


def test_text_true_false_reads_as_booleans_in_any_case():
    from churnops.monitor.prepare import coerce_categorical

    found = coerce_categorical(pl.Series(["True", " FALSE", "true", "maybe", None]), pl.Boolean())
    assert found.series.to_list() == [True, False, True, None, None]
    assert found.unparsable == 1
    spelled = coerce_categorical(pl.Series([True, False, None]), pl.String(), ("yes", "no"))
    assert spelled.series.to_list() == ["yes", "no", None]


def test_the_row_sample_of_repeated_rows_keeps_their_proportions():
    frame = pl.DataFrame({"a": ["p", "p", "p", "q"] * 5_000, "b": ["u", "u", "u", "v"] * 5_000})
    sampler = RowSampler(["a", "b"], 1_000)
    for start in range(0, frame.height, 3_000):  # in chunks, merged: the same sample
        sampler.update(frame[start : start + 3_000])
    sample = sampler.finish()
    assert sample.height == 1_000
    counts = dict(sample.group_by("a").len().iter_rows())
    assert counts == {"p": 750, "q": 250}
    whole = RowSampler(["a", "b"], 1_000)
    whole.update(frame)
    assert whole.finish().sort("a", "b").equals(sample.sort("a", "b"))


def _coupled(rng: np.random.Generator, n: int, coupled: bool) -> pl.DataFrame:
    a = rng.choice(["p", "q", "r"], n)
    follow = {"p": "u", "q": "v", "r": "w"}
    b = np.array([follow[v] for v in a]) if coupled else rng.choice(["u", "v", "w"], n)
    return pl.DataFrame({"a": a, "b": b})


def test_multivariate_sees_a_changed_pairing_of_few_repeated_combinations():
    rng = np.random.default_rng(3)
    settings = replace(CALIBRATED, multivariate=True, multivariate_rows=2_000)
    result = monitor_frames(_coupled(rng, 20_000, True), _coupled(rng, 20_000, False), settings)
    assert not any(c.drift_detected for c in result.columns)  # each column keeps its shares
    assert result.multivariate is not None and result.multivariate.domain_classifier is not None
    assert result.multivariate.domain_classifier.drift_detected
    assert result.multivariate.domain_classifier.statistic > 0.8
    same = monitor_frames(_coupled(rng, 20_000, True), _coupled(rng, 20_000, True), settings)
    assert same.multivariate is not None and not same.multivariate.detected


def test_multivariate_takes_a_category_column_with_more_values_than_the_classifier():
    rng = np.random.default_rng(4)
    cities = [f"city {i}" for i in range(MAX_CATEGORIES + 100)]

    def table(shift: float) -> pl.DataFrame:
        city = rng.choice(cities, 4_000)
        return pl.DataFrame({"city": city, "x": rng.normal(shift, 1, 4_000)})

    settings = replace(CALIBRATED, multivariate=True, multivariate_rows=2_000)
    result = monitor_frames(table(0.0), table(0.0), settings)
    assert result.multivariate is not None and result.multivariate.domain_classifier is not None
    assert not result.multivariate.detected


def test_pca_of_one_column_says_no_change_instead_of_a_huge_ratio():
    rng = np.random.default_rng(5)
    settings = replace(CALIBRATED, multivariate=True, multivariate_rows=1_000)
    result = monitor_frames(
        pl.DataFrame({"x": rng.normal(size=2_000)}), pl.DataFrame({"x": rng.normal(size=2_000)}), settings
    )
    assert result.multivariate is not None and result.multivariate.pca_reconstruction is not None
    assert result.multivariate.pca_reconstruction.statistic == pytest.approx(1.0, abs=0.05)
    assert not result.multivariate.pca_reconstruction.drift_detected


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_a_shift_of_half_a_deviation_alarms_at_any_scale(scale):
    rng = np.random.default_rng(6)
    reference = pl.DataFrame({"x": rng.normal(1.0, 0.1, 5_000) * scale})
    current = pl.DataFrame({"x": rng.normal(1.05, 0.1, 5_000) * scale})
    result = monitor_frames(reference, current, CALIBRATED)
    column = result.column("x")
    assert column.calibration is not None
    assert column.calibration.effect == pytest.approx(0.5, rel=0.15)
    assert column.drift_detected
    quiet = monitor_frames(reference, pl.DataFrame({"x": rng.normal(1.0, 0.1, 5_000) * scale}), CALIBRATED)
    assert not quiet.column("x").drift_detected


def _dated(rng: np.random.Generator, n: int, first: str, fmt: str = "%Y-%m-%d") -> pl.DataFrame:
    start = np.datetime64(first)
    days = (start + rng.integers(0, 56, n).astype("timedelta64[D]")).astype("datetime64[D]").astype(object)
    return pl.DataFrame({"t": [d.strftime(fmt) for d in days], "x": rng.normal(size=n), "y": rng.integers(0, 2, n)})


def test_the_time_column_places_rows_and_is_not_tested(tmp_path):
    rng = np.random.default_rng(7)
    _dated(rng, 3_000, "2023-03-01").write_csv(tmp_path / "reference.csv")
    _dated(rng, 3_000, "2024-01-01").write_csv(tmp_path / "current.csv")
    done = churnops(
        tmp_path, "monitor", "--no-cache", "-r", "reference.csv", "-p", "current.csv", "-t", "y",
        "--verdict", "calibrated", "--chunk-by", "period:2w", "--time-column", "t",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = metrics(tmp_path)
    assert "t" not in found["columns"]  # other dates than the reference's are the point, not a drift
    assert found["dataset_drift"]["detected"] is False
    # 56 days from Monday 2024-01-01 in fortnights counted from Monday 1970-01-05: 5 periods
    assert "chunks (period:2w of t): 0 of 5 tested drifted" in done.stdout
    rate = found["dataset_drift"]["calibrated"]
    assert rate["expected_false_alarm_rate"] == pytest.approx(0.05)  # one column: any drift is data drift
    # the chunks' columns, adjusted together: at most fdr more
    assert rate["any_finding_false_alarm_rate"] == pytest.approx(1 - 0.95 * 0.95)


def test_dates_a_wrong_format_cannot_read_are_a_warning(tmp_path):
    rng = np.random.default_rng(8)
    _dated(rng, 3_000, "2023-03-01").write_csv(tmp_path / "reference.csv")
    _dated(rng, 3_000, "2024-01-01", "%m/%d/%Y").write_csv(tmp_path / "current.csv")
    done = churnops(
        tmp_path, "monitor", "--no-cache", "-r", "reference.csv", "-p", "current.csv", "-t", "y",
        "--verdict", "calibrated", "--chunk-by", "period:1w", "--time-column", "t", "--time-format", "%d/%m/%Y",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "WARNING: time chunks:" in done.stdout
    assert "have no readable date in t and are in no chunk" in done.stdout
    kinds = [r["kind"] for r in metrics(tmp_path)["verdict"]["reasons"]]
    assert "chunk dates" in kinds


def test_history_lists_row_chunks_in_row_order(tmp_path):
    rng = np.random.default_rng(9)
    for name in ("reference", "current"):
        pl.DataFrame({"x": rng.normal(size=3_000)}).write_csv(tmp_path / f"{name}.csv")
    done = churnops(
        tmp_path, "monitor", "--no-cache", "-r", "reference.csv", "-p", "current.csv", "--set", "columns.target=",
        "--verdict", "calibrated", "--chunk-by", "size:500",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = churnops(tmp_path, "history", "--chunks", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    starts = [int(row["start_at"]) for row in json.loads(listed.stdout)]
    assert starts == sorted(starts) and len(starts) == 6


@pytest.mark.parametrize(
    "reference_region, batch_region, said",
    [
        (None, None, "no value in the reference or the batch (every row is missing)"),
        (None, "north", "no value in the reference (every row is missing)"),
        ("north", None, "no value in the batch (every row is missing)"),
        ("north", "north", "no segment has 5,000 rows on both sides"),
    ],
)
def test_a_segment_column_that_tests_no_segment_is_said(tmp_path, reference_region, batch_region, said):
    rng = np.random.default_rng(3)
    reference = pl.DataFrame({"x": rng.normal(size=1_000), "Region": [reference_region] * 1_000})
    batch = pl.DataFrame({"x": rng.normal(size=1_000), "Region": [batch_region] * 1_000})
    settings = replace(CALIBRATED, segments=("Region",), min_segment_rows=5_000)
    from churnops.monitor.verdict import decide

    result = monitor_frames(reference.cast({"Region": pl.String}), batch.cast({"Region": pl.String}), settings)
    verdict = decide(result)
    messages = [r.message for r in verdict.reasons]
    assert any(m.startswith("segment column Region: ") and said in m for m in messages), messages
    assert verdict.status != "ok"  # a warning at least (an all-missing column in the batch also drifts)
