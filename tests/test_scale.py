"""The streaming engine and the Dask engine against the exact engine.

Streaming summaries are bounded in size, give the same verdicts as the exact engine on the bank
data, stay within the documented error of each statistic, and do not depend on how the batch is
split; Dask (a real LocalCluster) gives the local streaming engine's results to the last digit.
"""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import polars as pl
import pytest

from churnops.config import load_config
from churnops.data.generator import generate_reference
from churnops.data.scenarios import apply_scenario, resolve_scenario
from churnops.monitor.batch import BatchBuilder
from churnops.monitor.engine import evaluate
from churnops.monitor.partitions import merge_builders, partition_builder
from churnops.monitor.profile import ProfileBuilder
from churnops.monitor.settings import settings_from_config
from churnops.monitor.sketch import RELATIVE_ERROR, LogHistogram

ROWS = 150_000  # per dataset: enough distinct Balance/Income values for the sketches to engage
SKETCHED = ["Balance", "Income", "Outstanding Loans"]


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame]:
    table = generate_reference(2 * ROWS, 11)
    drifted, _ = apply_scenario(table[ROWS:], resolve_scenario("seed"), 1.0, 3)
    return table[:ROWS], drifted


@pytest.fixture()
def files(workspace, data):
    reference, current = data
    reference.write_parquet(workspace / "ref.parquet")
    current.write_parquet(workspace / "cur.parquet", row_group_size=40_000)
    current.write_csv(workspace / "cur.csv")
    return workspace


def monitor(cli, root, *args: str) -> dict:
    result = cli(
        "monitor", "-r", "ref.parquet", "--no-cache", "--set", "history.enabled=false", "--set", "model.monitor='off'",
        *args,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())


def test_streaming_gives_the_exact_verdicts_within_the_documented_error(files, cli):
    exact = monitor(cli, files, "-p", "cur.parquet", "--mode", "exact")
    streaming = monitor(cli, files, "-p", "cur.parquet", "--mode", "streaming")
    assert exact["mode"]["current"] == "exact" and streaming["mode"]["current"] == "streaming"
    assert streaming["mode"]["approximate_columns"] == sorted(SKETCHED)
    assert streaming["mode"]["relative_error"] == RELATIVE_ERROR
    for name, column in exact["columns"].items():
        theirs = streaming["columns"][name]
        assert theirs["drift_detected"] == column["drift_detected"], name
        assert theirs["test"] == column["test"]
        if name in SKETCHED:  # normed Wasserstein from sketches: within 1% (measured: ~1e-5)
            assert theirs["statistic"] == pytest.approx(column["statistic"], rel=0.01), name
            for q, value in column["current"]["quantiles"].items():
                assert theirs["current"]["quantiles"][q] == pytest.approx(value, rel=2 * RELATIVE_ERROR, abs=1e-9)
            assert theirs["current"]["min"] == column["current"]["min"]  # exact extremes
            assert theirs["current"]["max"] == column["current"]["max"]
        else:  # counted exactly: the exact engine's numbers
            assert theirs["statistic"] == pytest.approx(column["statistic"], rel=1e-12, abs=1e-15), name
    assert streaming["dataset_drift"] == exact["dataset_drift"]
    assert streaming["target_drift"]["p_value"] == pytest.approx(exact["target_drift"]["p_value"], abs=1e-15)
    quality = ("score", "failed_cells", "duplicated_rows", "duplicated_ids")
    assert {k: streaming["data_quality"][k] for k in quality} == {k: exact["data_quality"][k] for k in quality}


def test_every_binned_test_and_ks_from_streaming_summaries(files, cli):
    for method, tolerance in (("ks", 0.01), ("psi", 0.01), ("jensenshannon", 0.01), ("kl_div", 0.01)):
        sets = ["--set", f"drift.num_method='{method}'", "--set", "drift.binning='quantile'"]
        exact = monitor(cli, files, "-p", "cur.parquet", "--mode", "exact", *sets)
        streaming = monitor(cli, files, "-p", "cur.parquet", "--mode", "streaming", *sets)
        for name in SKETCHED:
            a, b = exact["columns"][name], streaming["columns"][name]
            assert b["test"] == method and b["drift_detected"] == a["drift_detected"], (method, name)
            assert b["statistic"] == pytest.approx(a["statistic"], rel=tolerance), (method, name)


def test_csv_and_parquet_streaming_agree_and_summaries_stay_small(files, cli, data):
    parquet = monitor(cli, files, "-p", "cur.parquet", "--mode", "streaming")
    csv = monitor(cli, files, "-p", "cur.csv", "--mode", "streaming")
    for name, column in parquet["columns"].items():
        assert csv["columns"][name]["statistic"] == pytest.approx(column["statistic"], rel=1e-12), name
    # the summary of a million values is a few tens of thousands of buckets
    sketch = LogHistogram()
    values = np.random.default_rng(0).lognormal(10, 1.5, 1_000_000)
    sketch.add(values)
    buckets, _ = sketch.weighted_sample()
    assert buckets.size < 80_000


def builders_for(data, chunking: list[int], order: list[int]) -> BatchBuilder:
    reference, current = data
    settings = settings_from_config(load_config())
    profile_builder = ProfileBuilder(reference.columns, settings, streaming=True)
    profile_builder.update(reference)
    profile = profile_builder.finish()
    edges = [0, *np.cumsum(chunking).tolist()]
    parts = [
        partition_builder(current[edges[i] : edges[i + 1]], profile, current.columns, settings)
        for i in range(len(chunking))
    ]
    # each part goes through pickle, as Dask and Spark move them between processes
    return merge_builders(pickle.loads(pickle.dumps(parts[i])) for i in order), profile, settings


def test_streaming_results_do_not_depend_on_the_partitioning(data):
    one, profile, settings = builders_for(data, [ROWS], [0])
    many, _, _ = builders_for(data, [7_000, 50_000, 1, 42_999, 50_000], [3, 0, 4, 2, 1])
    a = evaluate(profile, one.finish(), settings).to_dict()
    b = evaluate(profile, many.finish(), settings).to_dict()
    for name in a["columns"]:
        assert a["columns"][name]["statistic"] == b["columns"][name]["statistic"], name
        assert a["columns"][name]["current"] == b["columns"][name]["current"], name
    assert a["data_quality"] == b["data_quality"]


def test_suspicious_data_is_reported_the_same_by_both_engines(workspace, cli, data):
    reference, current = data
    rows = pl.int_range(pl.len())
    odd = current.head(20_000).with_columns(
        pl.when(rows < 100).then(None).otherwise(pl.col("Income")).alias("Income"),
        pl.when(rows < 50).then(float("inf")).otherwise(pl.col("Balance")).alias("Balance"),
        pl.when(rows < 30).then(pl.lit("n/a?")).otherwise(pl.col("Gender")).alias("Gender"),
        pl.when(rows < 20).then(900).otherwise(pl.col("Credit Score")).alias("Credit Score"),
        pl.when(rows < 10).then(pl.lit("someday")).otherwise(pl.col("Date of Birth")).alias("Date of Birth"),
        pl.when(rows < 40).then(None).otherwise(pl.col("Occupation")).alias("Occupation"),
    )
    odd = pl.concat([odd, odd.tail(25)])
    reference.write_parquet(workspace / "ref.parquet")
    odd.write_parquet(workspace / "odd.parquet")  # text columns dictionary-encoded, with nulls
    odd.write_csv(workspace / "odd.csv")
    results = {
        (fmt, mode): monitor(cli, workspace, "-p", f"odd.{fmt}", "--mode", mode)["data_quality"]
        for fmt in ("parquet", "csv")
        for mode in ("exact", "streaming")
    }
    expected = {(c["check"], c["column"]): c["count"] for c in results[("csv", "exact")]["checks"]}
    assert expected[("infinite", "Balance")] == 50 and expected[("missing", "Income")] == 100
    assert expected[("implausible_value", "Gender")] == 30 and expected[("out_of_domain", "Credit Score")] == 20
    assert expected[("unparsable", "Date of Birth")] == 10 and expected[("duplicated_rows", None)] == 25
    for key, quality in results.items():
        assert {(c["check"], c["column"]): c["count"] for c in quality["checks"]} == expected, key
        assert quality["score"] == results[("csv", "exact")]["score"], key


def test_repeated_rows_counted_on_a_sample_of_identifiers(data):
    reference, current = data
    settings = settings_from_config(load_config())
    profile_builder = ProfileBuilder(reference.columns, settings, streaming=True)
    profile_builder.update(reference)
    profile = profile_builder.finish()

    def count(frame: pl.DataFrame) -> tuple[int, bool, int]:
        builder = BatchBuilder(profile, frame.columns, settings, streaming=True, row_sample=16)
        for start in range(0, frame.height, 30_000):
            builder.update(frame[start : start + 30_000])
        tally = builder.finish()
        return tally.duplicated_rows, tally.duplicated_rows_estimated, sum(tally.duplicated_ids.values())

    assert count(current) == (0, True, 0)
    copies = current.sample(20_000, seed=5)
    repeated, estimated, ids = count(pl.concat([current, copies]))
    assert estimated
    assert abs(repeated - 20_000) < 3_000  # a 1/16 sample of identifiers, scaled (sd about 550)
    assert abs(ids - 20_000) < 3_000 and ids % 16 == 0


def test_duplicate_sampling_threshold_comes_from_config(files, cli):
    exact = monitor(cli, files, "-p", "cur.parquet", "--mode", "streaming")
    assert exact["data_quality"]["duplicated_rows_estimated"] is False
    sampled = monitor(
        cli, files, "-p", "cur.parquet", "--mode", "streaming", "--set", "monitor.sample_duplicates_above=1000"
    )
    assert sampled["data_quality"]["duplicated_rows_estimated"] is True
    result = cli("monitor", "-p", "cur.parquet", "--set", "monitor.sample_duplicates_above=-1")
    assert result.exit_code == 2 and "monitor.sample_duplicates_above" in result.output


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("dask.distributed", reason="needs: dask (pip install 'churnops[dask]')")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    yield cluster
    cluster.close()


def test_dask_gives_the_local_streaming_results(files, cli, dask_cluster, monkeypatch):
    monkeypatch.setenv("CHURNOPS_ALLOW_ENGINE_CODE", "1")  # a cluster is trusted by the job, never by a file
    for source in ("cur.parquet", "cur.csv"):
        local = monitor(cli, files, "-p", source, "--mode", "streaming")
        remote = monitor(
            cli,
            files,
            "-p",
            source,
            "--mode",
            "streaming",
            "--engine",
            "dask",
            "--scheduler",
            dask_cluster.scheduler_address,
        )
        assert remote["engine"] == "dask" and remote["mode"]["partitions"] >= (2 if source.endswith("parquet") else 1)
        assert remote["mode"]["scheduler"] == dask_cluster.scheduler_address
        for name, column in local["columns"].items():
            other = remote["columns"][name]
            assert (other["statistic"], other["p_value"], other["drift_detected"]) == (
                column["statistic"],
                column["p_value"],
                column["drift_detected"],
            ), (source, name)
            assert other["current"] == column["current"], (source, name)
        assert remote["data_quality"] == local["data_quality"]
        assert remote["current"]["sha256"] == local["current"]["sha256"]


def test_dask_reads_parquet_integers_decimals_and_identifiers_as_the_local_engine_does(
    workspace, cli, dask_cluster, monkeypatch
):
    """Dask's partitions were pandas frames of numpy columns: an integer column with a null
    became floats, so identifiers from 2**53 on merged (49 repeated identifiers where there is
    none), and decimals arrived as Python objects. They are now Arrow columns, cast as the local
    reader casts them: every count, statistic and summary equals the local streaming engine's."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setenv("CHURNOPS_ALLOW_ENGINE_CODE", "1")
    rng = np.random.default_rng(9)
    n = 400
    pl.DataFrame({"id": range(n), "x": rng.normal(size=n), "amount": rng.gamma(2.0, 50.0, n)}).write_parquet(
        workspace / "ref.parquet"
    )
    big = [2**53 + k for k in range(n)]
    with_null = [None if k == 5 else v for k, v in enumerate(big)]
    amounts = [None if k % 50 == 0 else Decimal(f"{v:.2f}") for k, v in enumerate(rng.gamma(2.0, 60.0, n))]
    for name, ids in (
        ("i64", pa.array(with_null, pa.int64())),
        ("dec", pa.array([Decimal(v) for v in big], pa.decimal128(38, 0))),
        ("dup", pa.array(big[:-1] + big[:1], pa.uint64())),
    ):
        table = pa.table({"id": ids, "x": rng.normal(size=n), "amount": pa.array(amounts, pa.decimal128(12, 2))})
        pq.write_table(table, workspace / f"{name}.parquet", row_group_size=100)
    for name, repeats in (("i64", 0), ("dec", 0), ("dup", 1)):
        given = ("-p", f"{name}.parquet", "--target", "", "--id", "id", "--mode", "streaming")
        local = monitor(cli, workspace, *given)
        remote = monitor(cli, workspace, *given, "--engine", "dask", "--scheduler", dask_cluster.scheduler_address)
        assert remote["mode"]["partitions"] == 4
        checks = {c["check"]: c for c in remote["data_quality"]["checks"]}
        assert checks.get("duplicated_ids", {}).get("count", 0) == repeats, (name, checks)
        assert remote["data_quality"] == local["data_quality"], name
        for column in ("x", "amount"):
            assert remote["columns"][column]["current"] == local["columns"][column]["current"], (name, column)
            assert remote["columns"][column]["statistic"] == local["columns"][column]["statistic"], (name, column)


def test_dask_without_a_scheduler_starts_a_local_cluster(files, cli):
    pytest.importorskip("dask.distributed", reason="needs: dask (pip install 'churnops[dask]')")
    result = monitor(cli, files, "-p", "cur.parquet", "--engine", "dask", "--jobs", "2")
    assert result["mode"]["scheduler"] == "local" and result["dataset_drift"]["detected"]


def test_an_unreachable_scheduler_is_one_line(files, cli, monkeypatch):
    pytest.importorskip("dask.distributed", reason="needs: dask (pip install 'churnops[dask]')")
    args = ("monitor", "-r", "ref.parquet", "-p", "cur.parquet", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9")
    monkeypatch.delenv("CHURNOPS_ALLOW_ENGINE_CODE", raising=False)
    refused = cli(*args)  # a cluster unpickles into churnops: chosen by the job's environment only
    assert refused.exit_code == 2 and "CHURNOPS_ALLOW_ENGINE_CODE=1" in refused.output, refused.output
    (files / "churnops.toml").write_text('[monitor]\nengine = "dask"\nscheduler = "tcp://127.0.0.1:9"\n')
    from_file = cli("monitor", "-r", "ref.parquet", "-p", "cur.parquet")
    assert from_file.exit_code == 2 and "CHURNOPS_ALLOW_ENGINE_CODE=1" in from_file.output, from_file.output
    (files / "churnops.toml").unlink()
    monkeypatch.setenv("CHURNOPS_ALLOW_ENGINE_CODE", "1")
    result = cli(
        "monitor", "-r", "ref.parquet", "-p", "cur.parquet", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"
    )
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:9" in result.output
    assert not (files / "monitoring" / "monitoring_metrics.json").exists()


def test_bad_mode_and_jobs_are_usage_errors(files, cli):
    result = cli("monitor", "-p", "cur.parquet", "--mode", "fastest")
    assert result.exit_code == 2 and "monitor.mode" in result.output
    result = cli("monitor", "-p", "cur.parquet", "--jobs", "-1")
    assert result.exit_code == 2


def test_the_progress_bar_shows_rows_columns_and_time_left():
    from rich.console import Console

    from churnops.cli.common import StagedProgress

    out = io.StringIO()
    bar = StagedProgress(delay=0.0)
    bar.console_factory = lambda: Console(file=out, force_terminal=True, width=100)
    bar("current cur.parquet: 120,000 rows", 3, 10)
    bar("current cur.parquet: 240,000 rows", 6, 10)
    bar("testing columns", 5, 16)
    bar.close()
    text = out.getvalue()
    assert "120,000 rows" in text and "testing columns" in text and "31%" in text


def test_the_progress_bar_is_silent_when_quiet_not_a_terminal_or_quick(monkeypatch):
    from churnops.cli import common

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(common.sys, "stderr", Terminal())
    monkeypatch.setattr(common.STATE, "quiet", False)
    with common.staged_progress() as bar:
        assert isinstance(bar, common.StagedProgress)
        bar("current x.csv: 10 rows", 1, 2)  # within the first second: nothing shown yet
        assert bar.progress is None
    monkeypatch.setattr(common.STATE, "quiet", True)
    with common.staged_progress() as bar:
        assert bar is None
    monkeypatch.setattr(common.STATE, "quiet", False)
    monkeypatch.setattr(common.sys, "stderr", io.StringIO())
    with common.staged_progress() as bar:
        assert bar is None
