import hashlib
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_data_init_then_generate(workspace, cli):
    result = cli("data", "init", "--rows", "30000")
    assert result.exit_code == 0, result.output
    assert "created" in result.output
    churn = workspace / "data" / "churn.csv"
    first = hashlib.sha256(churn.read_bytes()).hexdigest()
    assert cli("data", "init").exit_code == 0  # same content: unchanged, fine
    assert hashlib.sha256(churn.read_bytes()).hexdigest() == first

    result = cli("generate")
    assert result.exit_code == 0, result.output
    batch = workspace / "data" / "production" / "bank_churn_prod.csv"
    assert pl.read_csv(batch).height == 10_000
    assert (workspace / "data" / "production" / "bank_churn_prod.meta.json").exists()
    assert "achieved +4.50%" in result.output


def test_generate_options(workspace, cli):
    cli("data", "init", "--rows", "5000", "--output", "data/small.parquet")
    result = cli(
        "generate",
        "--input",
        "data/small.parquet",
        "--rows",
        "1000:3000",
        "--intensity",
        "0",
        "--output",
        "out/batch.parquet",
    )
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(workspace / "out" / "batch.parquet").height == 2000


def test_bad_input_exits_2_with_one_line_and_no_partial_file(workspace, cli):
    result = cli("generate")
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and "file not found" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (workspace / "data" / "production").exists()

    cli("data", "init", "--rows", "25000")
    result = cli("generate")
    assert result.exit_code == 2
    assert "rows [20000, 30000) requested but the file has only 25000 data rows" in result.output
    assert not (workspace / "data" / "production" / "bank_churn_prod.csv").exists()

    result = cli("generate", "--scenario", "nope")
    assert result.exit_code == 2 and "unknown scenario 'nope'" in result.output

    result = cli("generate", "--rows", "abc")
    assert result.exit_code == 2 and "--rows: expected START:END" in result.output

    (workspace / "data" / "cols.csv").write_text("a,b\n1,2\n")
    result = cli("generate", "--input", "data/cols.csv", "--rows", "0:1")
    assert result.exit_code == 2 and "scenario needs column 'Balance'" in result.output


def test_data_init_refuses_to_overwrite_other_content(workspace, cli):
    (workspace / "data").mkdir()
    (workspace / "data" / "churn.csv").write_text("mine\n")
    result = cli("data", "init")
    assert result.exit_code == 2 and "--force" in result.output
    assert (workspace / "data" / "churn.csv").read_text() == "mine\n"
    assert cli("data", "init", "--force").exit_code == 0


def test_project_dir_option(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("-C", "demo", "data", "init", "--rows", "100").exit_code == 0
    assert (tmp_path / "demo" / "data" / "churn.csv").exists()


def test_help_is_fast_and_does_not_import_heavy_packages():
    code = (
        "import sys, time; t = time.perf_counter(); from churnops.cli import app; "
        "heavy = [m for m in ('polars', 'numpy', 'scipy', 'evidently', 'mlflow', 'dvc', 'dask', 'sklearn', "
        "'pandas') if m in sys.modules]; print(heavy)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
    shown = subprocess.run([sys.executable, "-m", "churnops", "--help"], capture_output=True, text=True, check=True)
    assert "Exit codes" in shown.stdout  # start-up time itself is measured in benchmarks/


def test_monitor_on_local_files_without_a_model_loads_neither_storage_nor_registry_client(tmp_path):
    """A nightly run on local files, with no model registered yet, pays for no object-storage
    client and no MLflow registry code (they cost tens of milliseconds of a sub-second run), and
    the exact engine on CSV files imports no Arrow (about 20 MB; counting identifiers did)."""
    (tmp_path / "ref.csv").write_text("id,a,b\n" + "".join(f"{i},{i % 7},{'xy'[i % 2]}\n" for i in range(300)))
    (tmp_path / "cur.csv").write_text("id,a,b\n" + "".join(f"{i},{i % 5},{'xy'[i % 3 > 0]}\n" for i in range(200)))
    code = (
        "import sys\n"
        "from churnops.cli import main\n"
        "sys.argv = ['churnops', '-q', 'monitor', '-r', 'ref.csv', '-p', 'cur.csv', '--no-cache', '--id', 'id']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert done.code in (0, 1, None), done.code\n"
        "loaded = ('churnops.data.remote', 'churnops.pipeline.scoring', 'churnops.integrations.mlflow_registry',\n"
        "          'mlflow', 'sklearn', 'pyarrow')\n"
        "print([m for m in loaded if m in sys.modules])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "monitoring" / "monitoring_metrics.json").is_file()


@pytest.mark.parametrize("chosen", [None, "dirty_decay_ms:5000"])
def test_cli_sets_polars_allocator_decay_before_polars_loads_unless_the_user_did(chosen):
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if chosen:
        env["_RJEM_MALLOC_CONF"] = chosen
    code = "import os, sys; import churnops.cli; print(os.environ['_RJEM_MALLOC_CONF'], 'polars' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert shown.split() == [chosen or "dirty_decay_ms:100,muzzy_decay_ms:0", "False"]


def test_seed_script_runs_the_command(workspace):
    subprocess.run([sys.executable, "-m", "churnops", "data", "init", "--rows", "30000"], check=True, cwd=workspace)
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_prod_data.py"), "--intensity", "0.3"],
        cwd=workspace,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "intensity 0.3" in done.stdout


def test_set_overrides_apply_and_flags_win(workspace, cli):
    cli("data", "init", "--rows", "30000")
    result = cli("generate", "--set", "scenario.intensity=0")
    assert "at intensity 0" in result.output
    result = cli("generate", "--set", "scenario.intensity=0", "--intensity", "0.5")
    assert "at intensity 0.5" in result.output
    result = cli("generate", "--set", "nonsense")
    assert result.exit_code == 2 and "--set: expected KEY=VALUE" in result.output
    result = cli("generate", "--set", "scenario.intensity=-1")
    assert result.exit_code == 2 and "scenario.intensity" in result.output
