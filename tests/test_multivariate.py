"""Multivariate drift (``drift.multivariate``): the ``correlation`` scenario that every
per-column test misses is caught, no drift is not, the row sample does not depend on chunking,
the cache keeps it, and bad settings are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jsonschema
import numpy as np
import polars as pl
import pytest
from cache_files import resign

from churnops.config import Config
from churnops.data.generator import generate_reference
from churnops.data.scenarios import apply_scenario, resolve_scenario
from churnops.monitor.engine import monitor_frames
from churnops.monitor.multivariate import RowSampler, mann_whitney_auc_p
from churnops.monitor.settings import settings_from_config
from churnops.monitor.verdict import decide
from churnops.report.metrics import metrics_schema

pytest.importorskip("sklearn", reason="needs: scikit-learn (pip install 'churnops[mlflow]')")

SETTINGS = replace(settings_from_config(Config()), verdict="calibrated", multivariate=True, multivariate_rows=3000)


@pytest.fixture(scope="module")
def pool() -> pl.DataFrame:
    return generate_reference(12_000, 11)


def _split(pool: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    order = np.random.default_rng(seed).permutation(pool.height)
    return pool[order[:6000]], pool[order[6000:]]


def test_the_correlation_scenario_keeps_every_column_and_only_multivariate_drift_sees_it(pool):
    reference, current = _split(pool, 1)
    changed, _ = apply_scenario(current, resolve_scenario("correlation"), 1.0, seed=1)
    for name in current.columns:  # every column keeps exactly its values
        assert sorted(changed[name].to_list(), key=str) == sorted(current[name].to_list(), key=str), name
    result = monitor_frames(reference, changed, SETTINGS)
    assert result.dataset_drift.drifted_columns == []  # no single column moved
    found = result.multivariate
    assert found.domain_classifier.drift_detected and found.domain_classifier.statistic > 0.7
    assert found.domain_classifier.details["separating_columns"][0]["column"] == "Income"
    verdict = decide(result)
    assert verdict.trigger and verdict.reasons[0].kind == "multivariate"
    assert "most separating: Income" in verdict.reasons[0].message
    document = result.to_dict()
    jsonschema.validate(document, metrics_schema())
    assert document["multivariate"]["drift_detected"] is True
    assert document["timings"]["multivariate_s"] > 0


def test_with_no_drift_neither_detector_alarms(pool):
    alarms = 0
    for seed in range(4):
        result = monitor_frames(*_split(pool, 50 + seed), SETTINGS)
        alarms += bool(result.multivariate.detected)
        assert 0.4 < result.multivariate.domain_classifier.statistic < 0.56
    assert alarms == 0


def test_the_row_sample_does_not_depend_on_chunks_or_their_order(pool):
    columns = ["Income", "Gender", "Balance"]
    whole = RowSampler(columns, 500)
    whole.update(pool)
    parts = [RowSampler(columns, 500) for _ in range(3)]
    for index, start in enumerate(range(0, pool.height, 4000)):
        parts[index].update(
            pool[start : start + 4000].to_arrow().to_batches()[0] if index == 1 else pool[start : start + 4000]
        )
    merged = parts[2]
    merged.merge(parts[0])
    merged.merge(parts[1])
    assert whole.finish().equals(merged.finish())
    assert whole.finish().height == 500


def test_mann_whitney_null_of_the_auc():
    assert mann_whitney_auc_p(0.5, 100, 100) == pytest.approx(0.5)
    # AUC 0.55 with 1000 + 1000 rows is 3.87 standard deviations above 0.5
    assert mann_whitney_auc_p(0.55, 1000, 1000) == pytest.approx(5.4e-5, rel=0.05)


def churnops(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "churnops", *args], cwd=root, capture_output=True, text=True, timeout=600, env=env
    )


def test_cli_multivariate_with_the_cache_and_streaming(tmp_path, pool):
    reference, current = _split(pool, 3)
    reference.write_csv(tmp_path / "ref.csv")
    apply_scenario(current, resolve_scenario("correlation"), 1.0, seed=3)[0].write_parquet(tmp_path / "cur.parquet")
    runs = []
    for extra in ((), (), ("--mode", "streaming", "--no-cache")):
        done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.parquet", "--multivariate", *extra)
        assert done.returncode == 0, done.stderr
        assert "multivariate drift: a classifier tells the batch from the reference" in done.stdout
        document = json.loads((tmp_path / "monitoring" / "monitoring_metrics.json").read_text())
        jsonschema.validate(document, metrics_schema())
        runs.append(document)
    assert [r["outputs"]["profile_cache"] for r in runs] == ["miss", "hit", "off"]
    assert runs[0]["multivariate"] == runs[1]["multivariate"]  # the cached sample is the same rows
    assert runs[2]["multivariate"]["domain_classifier"]["drift_detected"]
    page = (tmp_path / "monitoring" / "monitoring_report.html").read_text()
    assert "Multivariate drift" in page and "Domain classifier" in page
    # a tampered sample in the cache is ignored and rebuilt
    (cache,) = sorted((tmp_path / ".churnops" / "profiles").glob("*.npz"))
    with np.load(cache, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["joint_codes_0"] = arrays["joint_codes_0"] + 1000
    with cache.open("wb") as handle:
        np.savez(handle, **arrays)
    resign(cache)  # (its content is what is tried)
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.parquet", "--multivariate")
    assert done.returncode == 0 and "ignoring unusable profile cache" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--multivariate", "--engine", "evidently"), "drift.multivariate needs the native, dask or spark engine"),
        (("--multivariate", "--set", "drift.multivariate_rows=10"), "drift.multivariate_rows"),
    ],
)
def test_bad_multivariate_settings_are_one_line(tmp_path, pool, args, message):
    reference, current = _split(pool, 4)
    reference.write_csv(tmp_path / "ref.csv")
    current.write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", *args)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def _random_table(rng: np.random.Generator, n: int) -> pl.DataFrame:
    columns = {f"x{i}": rng.normal(size=n) for i in range(3)}
    columns |= {f"cat{i}": rng.choice(list("ABCDE"), n) for i in range(6)}
    return pl.DataFrame(columns)


def test_the_row_sample_is_unbiased_whatever_share_of_the_table_it_takes():
    """Polars' row hash follows the last column's values: the 5,000 rows with the smallest hashes
    of 50,000 held 29% of one category of five, of 10,000 rows 23% - two samples of the same data
    that differ, and both detectors alarmed on unchanged data (ROC-AUC 0.576, p=4e-40)."""
    from churnops.monitor.multivariate import encode, multivariate_drift

    for seed in range(3):
        rng = np.random.default_rng(seed)
        reference, current = _random_table(rng, 50_000), _random_table(rng, 10_000)
        samples = []
        for table in (reference, current):
            sampler = RowSampler(table.columns, 5_000)
            for start in range(0, table.height, 7_000):
                sampler.update(table.slice(start, 7_000))
            samples.append(sampler.finish())
        for sample in samples:
            shares = sample["cat5"].value_counts()["count"].to_numpy() / sample.height
            assert np.all(np.abs(shares - 0.2) < 0.025), shares  # each category about one in five
        kinds = {name: "numerical" if name.startswith("x") else "categorical" for name in reference.columns}
        found = multivariate_drift(encode(samples[0], kinds), encode(samples[1], kinds), fdr=0.05)
        # no drift: each p-value is uniform, so one in 40 runs alarms at fdr / 2 (measured: 1 of 40);
        # the biased sample gave p = 1e-26 to 1e-40 (classifier) and 1e-7 (PCA) every time
        for detector in (found.domain_classifier, found.pca_reconstruction):
            assert detector is not None and detector.p_value > 1e-4, found.to_dict()
