"""``--engine spark`` on a real local Spark session (pyspark and Java 17, installed by .ci/run).

One session serves the module (starting one costs seconds); the commands run in this process
use it, as they use any session already running. It cuts files into many small partitions, so
merging in partition order is exercised. The commands that must start their own session (or
fail before one starts) run as separate processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from churnops.data.generator import generate_reference
from churnops.data.scenarios import apply_scenario, resolve_scenario

pyspark = pytest.importorskip("pyspark", reason="needs: pyspark and Java 17 (pip install 'churnops[spark]')")

ROWS = 30_000
SKIP = {"run_id", "created_at", "timings", "engine", "mode", "current", "reference", "profile_cache"}


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("churnops-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.files.maxPartitionBytes", "400k")  # many partitions, merged in order
        .config("spark.sql.files.openCostInBytes", "1k")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark-data")
    table = generate_reference(2 * ROWS, 7)
    drifted, _ = apply_scenario(table[ROWS:], resolve_scenario("seed"), 1.0, 5)
    reference = table[:ROWS].with_columns(pl.int_range(0, ROWS).alias("row"))  # a row number: an identifier
    current = drifted.with_columns(pl.int_range(0, ROWS).alias("row"))
    reference.write_csv(folder / "ref.csv")
    reference.write_parquet(folder / "ref.parquet", row_group_size=4_000)
    current.write_csv(folder / "cur.csv")
    current.write_parquet(folder / "cur.parquet", row_group_size=4_000)
    return folder, reference, current


@pytest.fixture()
def files(workspace, tables):
    folder, _, _ = tables
    for name in ("ref.csv", "ref.parquet", "cur.csv", "cur.parquet"):
        (workspace / name).symlink_to(folder / name)
    return workspace


def run(cli, root: Path, *args: str) -> dict:
    result = cli(
        "monitor", "--no-cache", "--set", "history.enabled=false", "--set", "model.monitor='off'",
        "--target", "Churn Flag", *args,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())


def same(a, b, path=""):
    """Every value of two metrics documents equal, but the run's own facts (ids, times, engine)."""
    if isinstance(a, dict):
        assert set(a) == set(b), (path, set(a) ^ set(b))
        for key in a:
            if key not in SKIP:
                same(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{index}]")
    else:
        assert a == b, (path, a, b)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_spark_gives_the_streaming_engines_results(files, cli, spark, kind):
    args = ("-r", f"ref.{kind}", "-p", f"cur.{kind}", "--segment", "Customer Segment", "--multivariate")
    local = run(cli, files, *args, "--mode", "streaming")
    on_spark = run(cli, files, *args, "--engine", "spark")
    assert on_spark["engine"] == "spark" and on_spark["mode"]["partitions"] >= 3, on_spark["mode"]  # files split
    assert on_spark["mode"]["spark_master"] == "local[2]"
    same(local, on_spark)  # every statistic, verdict, quality count, segment and detector
    assert on_spark["current"]["sha256"] == local["current"]["sha256"]
    assert on_spark["current"]["rows"] == ROWS and on_spark["reference"]["rows"] == ROWS
    assert on_spark["dataset_drift"]["detected"] and on_spark["segments"]["groups"]
    assert "row" not in on_spark["columns"]  # the row number was recognised across partitions


def test_a_reference_window_is_the_same_rows_on_spark(files, cli, spark):
    args = ("-r", "ref.csv", "-p", "cur.parquet", "--reference-rows", "5000:21000")
    local = run(cli, files, *args, "--mode", "streaming")
    on_spark = run(cli, files, *args, "--engine", "spark")
    assert on_spark["reference"]["rows"] == 16_000
    same(local, on_spark)


def test_folders_of_parts_and_catalog_tables(files, cli, spark, tables):
    _, _, current = tables
    spark.read.parquet(str(files / "cur.parquet")).repartition(5).write.parquet(str(files / "parts"))
    spark.read.parquet(str(files / "cur.parquet")).createOrReplaceTempView("churn_batch")
    whole = run(cli, files, "-r", "ref.parquet", "-p", "cur.parquet", "--engine", "spark")
    for given in ("parts", "table:churn_batch"):
        found = run(cli, files, "-r", "ref.parquet", "-p", given, "--engine", "spark")
        assert found["current"]["path"] == given and found["current"]["sha256"] is None
        for name, column in whole["columns"].items():  # the rows in another order: the same summaries
            assert found["columns"][name]["statistic"] == column["statistic"], (given, name)
            assert found["columns"][name]["drift_detected"] == column["drift_detected"]
        assert found["data_quality"] == whole["data_quality"]


def test_a_profile_built_by_spark_is_reused_by_the_local_streaming_engine(files, cli, spark):
    built = cli("profile", "build", "-r", "ref.csv", "--target", "Churn Flag", "--engine", "spark")
    assert built.exit_code == 0, built.output
    (cached,) = (files / ".churnops" / "profiles").glob("*.npz")
    written = cached.stat().st_mtime_ns
    result = cli("monitor", "-r", "ref.csv", "-p", "cur.csv", "--target", "Churn Flag", "--mode", "streaming")
    assert result.exit_code == 0, result.output
    assert cached.stat().st_mtime_ns == written  # read from the cache, not built again
    metrics = json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())
    assert metrics["outputs"]["profile_cache"] == "hit"
    local = run(cli, files, "-r", "ref.csv", "-p", "cur.csv", "--mode", "streaming")
    same(local, metrics)


def test_the_python_interface_takes_spark_dataframes(files, cli, spark):
    import churnops

    reference = spark.read.parquet(str(files / "ref.parquet"))
    current = spark.read.parquet(str(files / "cur.parquet"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", churnops.ChurnopsNotice)
        result = churnops.monitor(reference, current, target="Churn Flag", segments="Customer Segment")
    assert result.to_dict()["engine"] == "spark" and result.to_dict()["mode"]["partitions"] >= 3
    local = run(
        cli, files, "-r", "ref.parquet", "-p", "cur.parquet", "--mode", "streaming", "--segment", "Customer Segment"
    )
    for name, column in local["columns"].items():
        assert result.to_dict()["columns"][name]["statistic"] == column["statistic"], name
    assert result.verdict.status == local["verdict"]["status"]
    same(result.to_dict()["segments"], local["segments"])
    with pytest.raises(churnops.errors.InputDataError, match="the batch is a Spark DataFrame too"):
        churnops.monitor(reference, pl.read_parquet(files / "cur.parquet"))


def test_csv_text_is_typed_as_churnops_reads_it(workspace, cli, spark):
    """Null spellings, quoted numbers with a decimal comma, true/false, empty cells, and a value
    that contradicts its column's type after the rows the types are guessed from: the same
    numbers as the local streaming engine (that value counted as a failed cell)."""
    rows = 12_000
    amounts = [f"{i % 97},{i % 10}" for i in range(rows)]
    amounts[11_500] = "n/a yet"  # after the rows the types are guessed from
    counts = [str(i % 13) for i in range(rows)]
    counts[3] = "NA"
    flags = ["true" if i % 3 else "false" for i in range(rows)]
    for name, shift in (("ref.csv", 0), ("cur.csv", 5)):
        cities = ["" if i % 50 == 0 else ("Lyon" if i % 4 else "Nice") for i in range(rows)]
        lines = ["amount;count;flag;city"] + [
            f'"{amounts[(i + shift) % rows]}";{counts[i]};{flags[i]};{cities[i]}' for i in range(rows)
        ]
        (workspace / name).write_text("\n".join(lines) + "\n")
    args = ("-r", "ref.csv", "-p", "cur.csv", "--set", "data.separator=';'", "--set", "data.decimal=','")
    local = run(cli, workspace, *args, "--target", "", "--mode", "streaming")
    on_spark = run(cli, workspace, *args, "--target", "", "--engine", "spark")
    same(local, on_spark)
    assert {"amount", "count", "flag", "city"} <= set(on_spark["columns"])
    assert on_spark["columns"]["amount"]["type"] == "numerical" and on_spark["data_quality"]["failed_cells"] >= 1


def test_codes_with_leading_zeros_of_a_parquet_reference_meet_a_csv_batch(workspace, cli, spark):
    """Branch codes held as text by a Parquet reference (``07014``) keep their zeros in a CSV batch
    read by Spark, as by the local engine: they were read as numbers, and no label met its own -
    also in a file with decimal commas, where a text column of numbers only became floats."""
    rng = np.random.default_rng(4)
    pool = [f"{rng.choice([0, 0, 1])}{rng.integers(1000, 10000)}" for _ in range(20)]
    for name, n in (("ref", 3000), ("cur", 1500)):
        frame = pl.DataFrame({"branch": rng.choice(pool, n), "spend": rng.gamma(2.0, 100.0, n)})
        frame.write_parquet(workspace / f"{name}.parquet")
        frame.write_csv(workspace / f"{name}.csv")
        frame.with_columns(pl.col("spend").round(2).cast(pl.String).str.replace(".", ",", literal=True)).write_csv(
            workspace / f"{name}_comma.csv", separator=";"
        )
    local = run(cli, workspace, "-r", "ref.parquet", "-p", "cur.parquet", "--target", "", "--mode", "streaming")
    on_spark = run(cli, workspace, "-r", "ref.parquet", "-p", "cur.csv", "--target", "", "--engine", "spark")
    assert on_spark["columns"]["branch"]["current"]["shares"] == local["columns"]["branch"]["current"]["shares"]
    assert on_spark["columns"]["branch"]["drift_score"] == pytest.approx(local["columns"]["branch"]["drift_score"])
    comma = ("--set", "data.decimal=','", "--set", "data.separator=';'")
    on_spark = run(
        cli, workspace, "-r", "ref.parquet", "-p", "cur_comma.csv", "--target", "", "--engine", "spark", *comma
    )
    assert on_spark["columns"]["branch"]["current"]["shares"] == local["columns"]["branch"]["current"]["shares"]


def test_identifiers_stored_as_unsigned_or_decimal_numbers_keep_every_digit_on_spark(workspace, cli, spark):
    """Spark reads a Parquet column of unsigned 64-bit integers as ``decimal(20, 0)``, and its
    partitions cast decimals to floats: identifiers from 2**53 on that differ by one became one
    identifier, and their rows one row. They are read as their text, as the local reader does."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(8)
    n = 400
    pl.DataFrame({"id": range(n), "x": rng.normal(size=n)}).write_parquet(workspace / "ref.parquet")
    big = [2**53 + k for k in range(n)]
    repeated = big[:-1] + big[:1]  # one identifier really repeated
    x = rng.normal(size=n).tolist()
    for name, ids in (
        ("u64", pa.array(big, pa.uint64())),
        ("dec", pa.array([Decimal(v) for v in big], pa.decimal128(38, 0))),
        ("dup", pa.array(repeated, pa.uint64())),
    ):
        pq.write_table(pa.table({"id": ids, "x": x}), workspace / f"{name}.parquet", row_group_size=100)
    for name, repeats in (("u64", 0), ("dec", 0), ("dup", 1)):
        for engine in (("--mode", "streaming"), ("--engine", "spark")):
            found = run(
                cli, workspace, "-r", "ref.parquet", "-p", f"{name}.parquet", "--target", "", "--id", "id", *engine
            )
            checks = {c["check"]: c for c in found["data_quality"]["checks"]}
            assert checks.get("duplicated_ids", {}).get("count", 0) == repeats, (name, engine, checks)


def test_odd_csv_files_read_as_churnops_reads_them(workspace, cli, spark):
    """Names Spark would misread (a dot, a backtick, names differing in case, a trailing space),
    quoted cells holding line breaks, integers beyond 64 bits: the local streaming engine's numbers."""
    rows = 3_000
    names = ["a.b", "c `tick`", "x", "X", "with space ", "note", "big"]
    for name, shift in (("ref.csv", 0), ("cur.csv", 7)):
        frame = pl.DataFrame(
            {
                "a.b": [float((i * 7 + shift) % 101) for i in range(rows)],
                "c `tick`": [["red", "green", "blue"][(i + shift) % 3] for i in range(rows)],
                "x": [i % 5 for i in range(rows)],
                "X": [(i + shift) % 11 for i in range(rows)],
                "with space ": [float(i % 37) for i in range(rows)],
                "note": ["two\nlines" if i % 10 == 0 else "one line" for i in range(rows)],
                "big": [str(2**64 + i * 1_000_003 * (shift + 1)) for i in range(rows)],
            }
        )
        frame.write_csv(workspace / name)
    args = ("-r", "ref.csv", "-p", "cur.csv", "--target", "")
    local = run(cli, workspace, *args, "--mode", "streaming")
    on_spark = run(cli, workspace, *args, "--engine", "spark")
    same(local, on_spark)
    assert on_spark["current"]["rows"] == rows and set(names) - {"with space "} <= set(on_spark["columns"])
    assert on_spark["columns"]["big"]["type"] == "numerical"


def test_csv_files_spark_would_misread_are_refused(workspace, cli, spark):
    (workspace / "ref.csv").write_text("a,b\n" + "".join(f"{i},x{i % 3}\n" for i in range(200)))
    (workspace / "latin1.csv").write_bytes(
        ("a,b\n" + "".join(f"{i},R\u00e9tail\n" for i in range(200))).encode("latin-1")
    )
    (workspace / "ragged.csv").write_text("a,b\n" + "".join(f"{i},x\n" for i in range(100)) + "5,x,extra\n")
    (workspace / "parts").mkdir()
    (workspace / "parts" / "part-0.csv").write_text("a,b\n1,x1\n")
    (workspace / "parts" / "part-1.csv").write_text("b,a\nx2,2\n")
    cases = {
        "latin1.csv": "holds bytes that are not UTF-8 text: set data.encoding",
        "ragged.csv": "a row has 3 fields where the header has 2",
        "parts": "its header differs from part-0.csv's",
    }
    for batch, said in cases.items():
        done = cli("monitor", "-r", "ref.csv", "-p", batch, "--engine", "spark", "--target", "")
        assert done.exit_code == 2 and said in done.output and "Traceback" not in done.output, (batch, done.output)
        assert len(done.output.strip().splitlines()) <= 3, done.output  # the error line (and notices)
    local = cli("monitor", "-r", "ref.csv", "-p", "latin1.csv", "--mode", "streaming", "--target", "")
    assert local.exit_code == 2 and "not valid UTF-8 text" in local.output


def test_the_master_is_written_without_its_secrets():
    from types import SimpleNamespace

    from churnops.integrations.spark_engine import master_shown

    session = SimpleNamespace(sparkContext=SimpleNamespace(master="k8s://https://user:s3cr3tT0ken@10.0.0.1:6443"))
    shown = master_shown(session)
    assert "s3cr3tT0ken" not in shown and "user" not in shown and "10.0.0.1:6443" in shown


def test_spark_errors_are_one_line(files, cli, spark):
    missing = cli("monitor", "-r", "ref.parquet", "-p", "table:no_such_table", "--engine", "spark")
    assert missing.exit_code == 2 and "table:no_such_table: no such table" in missing.output
    assert "Traceback" not in missing.output
    odd = cli("monitor", "-r", "ref.parquet", "-p", "table:x;drop", "--engine", "spark")
    assert odd.exit_code == 2 and "not a table name" in odd.output
    spark.read.parquet(str(files / "cur.parquet")).drop("Balance").createOrReplaceTempView("no_balance")
    local = cli("monitor", "-r", "ref.parquet", "-p", "cur.parquet", "--set", "columns.numerical=['Balance']")
    assert local.exit_code == 0
    lacking = cli("monitor", "-r", "ref.parquet", "-p", "table:no_balance", "--engine", "spark")
    assert lacking.exit_code == 2 and "table:no_balance" in lacking.output and "Balance" in lacking.output
    (files / "mixed").mkdir()
    (files / "mixed" / "a.csv").write_text("x\n1\n")
    (files / "mixed" / "b.parquet").write_bytes(b"PAR1")
    mixed = cli("monitor", "-r", "ref.parquet", "-p", "mixed", "--engine", "spark")
    assert mixed.exit_code == 2 and "both CSV and Parquet parts" in mixed.output
    (files / "delta" / "_delta_log").mkdir(parents=True)
    delta = cli("monitor", "-r", "ref.parquet", "-p", "delta", "--engine", "spark")
    assert delta.exit_code == 2 and "cannot read Delta" in delta.output
    window = cli("monitor", "-r", "table:no_balance", "--reference-rows", "0:100", "-p", "cur.parquet", "-e", "spark")
    assert window.exit_code == 2 and "a row window" in window.output and "needs one file" in window.output
    assert not (files / "monitoring" / "monitoring_metrics.json").exists() or local.exit_code == 0


def test_summaries_from_elsewhere_are_refused():
    from churnops.errors import IntegrationError
    from churnops.integrations.spark_engine import new_key, opened, sealed

    key = new_key()
    assert opened(sealed(b"summary", key), key) == b"summary"
    tampered = bytearray(sealed(b"summary", key))
    tampered[-1] ^= 1
    for data in (bytes(tampered), sealed(b"summary", new_key()), b"", b"short"):
        with pytest.raises(IntegrationError, match="refused"):
            opened(data, key)


def churnops_process(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "churnops", "-C", str(root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_a_session_of_its_own_is_started_and_its_log_kept_off_the_terminal(files):
    done = churnops_process(files, "monitor", "-r", "ref.parquet", "-p", "cur.parquet", "-e", "spark", "-j", "2")
    assert done.returncode == 0, done.stderr
    assert "WARN" not in done.stderr and "log4j" not in done.stderr and "Stage" not in done.stderr, done.stderr
    assert (files / ".churnops" / "spark.log").is_file()
    metrics = json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())
    assert metrics["mode"]["spark_master"] == "local[2]"


def test_an_unreachable_master_and_a_missing_java_are_one_line(files, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ("monitor", "-r", "ref.parquet", "-p", "cur.parquet", "-e", "spark")
    master = ("--spark-master", f"spark://127.0.0.1:{port}")
    untrusted = churnops_process(files, *args, *master, env={"CHURNOPS_ALLOW_ENGINE_CODE": ""})
    assert untrusted.returncode == 2 and "CHURNOPS_ALLOW_ENGINE_CODE=1" in untrusted.stderr, untrusted.stderr
    unreachable = churnops_process(files, *args, *master, env={"CHURNOPS_ALLOW_ENGINE_CODE": "1"})
    assert unreachable.returncode == 2
    assert f"cannot reach the Spark master spark://127.0.0.1:{port}" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1, unreachable.stderr
    bad = churnops_process(files, *args, "--spark-master", "http://example")
    assert bad.returncode == 2 and "is not a Spark master" in bad.stderr
    bin_dir = tmp_path / "bin"  # a PATH with this Python but no java
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {"PATH": str(bin_dir), "JAVA_HOME": ""}
    no_java = churnops_process(files, *args, env=env)
    assert no_java.returncode == 2 and "Spark needs Java 17 or later and none is installed" in no_java.stderr
    wrong_home = churnops_process(files, *args, env={"JAVA_HOME": str(tmp_path)})
    assert wrong_home.returncode == 2 and f"JAVA_HOME={tmp_path} has no bin/java" in wrong_home.stderr
    mesos = churnops_process(files, *args, "--spark-master", "mesos://127.0.0.1:5050")
    assert mesos.returncode == 2 and "is not a Spark master" in mesos.stderr
    trusted = {"CHURNOPS_ALLOW_ENGINE_CODE": "1"}
    port = churnops_process(files, *args, "--spark-master", "spark://127.0.0.1:99999", env=trusted)
    assert port.returncode == 2 and "a port from 1 to 65535" in port.stderr
    assert not (files / "monitoring" / "monitoring_metrics.json").exists()


def test_a_bad_spark_setting_is_named_and_a_linked_folder_refused(files, tmp_path):
    args = ("monitor", "-r", "ref.parquet", "-p", "cur.parquet", "-e", "spark")
    bad = churnops_process(files, *args, "--set", 'spark.conf={"spark.sql.shuffle.partitions"="abc"}')
    assert bad.returncode == 2 and "spark.sql.shuffle.partitions" in bad.stderr, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    victim = tmp_path / "victim"
    victim.mkdir()
    (files / ".churnops").rename(tmp_path / "kept") if (files / ".churnops").exists() else None
    (files / ".churnops").symlink_to(victim)
    linked = churnops_process(files, *args, "--set", f"paths.profile_cache='{tmp_path / 'profiles'}'")
    assert linked.returncode == 2 and "is a link" in linked.stderr, linked.stderr
    assert list(victim.iterdir()) == []
