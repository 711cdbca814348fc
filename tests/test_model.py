"""The model lifecycle with a real MLflow store (sqlite + local artifacts) in a temporary folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import numpy as np
import polars as pl
import pytest

pytest.importorskip("mlflow", reason="needs: mlflow (pip install 'churnops[mlflow]')")
pytest.importorskip("sklearn", reason="needs: scikit-learn")

from churnops.config import load_config  # noqa: E402
from churnops.integrations import mlflow_registry as registry  # noqa: E402
from churnops.pipeline.modeling import store_of  # noqa: E402
from churnops.report.metrics import metrics_schema  # noqa: E402

COVARIATE_SHIFTS = """
[scenario.custom]
cov_none = [{op = "resample", column = "Credit Score", factor = 0.0, share = 0.25}]
cov_credit = [{op = "resample", column = "Credit Score", factor = 0.8, share = 0.25}]
cov_tenure = [{op = "resample", column = "Customer Tenure", factor = 0.8, share = 0.25}]
cov_complaints = [{op = "resample", column = "NumComplaints", factor = 0.6, share = 0.25}]
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace with 60,000 generated customers and a champion trained on rows [0, 20000)."""
    from typer.testing import CliRunner

    from churnops.cli import app

    root = tmp_path_factory.mktemp("model")
    previous = os.getcwd()
    os.chdir(root)
    runner = CliRunner()

    def cli(*args):
        return runner.invoke(app, list(args), catch_exceptions=False)

    try:
        (root / "churnops.toml").write_text(COVARIATE_SHIFTS)
        assert cli("data", "init", "--rows", "60000").exit_code == 0
        result = cli("train")
        assert result.exit_code == 0, result.output
        yield root, cli, result.output
    finally:
        os.chdir(previous)


def metrics(root: Path) -> dict:
    document = json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())
    jsonschema.validate(document, metrics_schema())
    return document


def test_train_registers_a_champion_with_signature_and_lineage(trained):
    root, cli, output = trained
    assert "bank-churn v1 is the champion" in output
    auc = float(output.split("validation ROC-AUC ")[1].split(",")[0])
    assert 0.75 <= auc <= 0.88
    config = load_config()
    store = store_of(config)
    assert registry.aliases(store, "bank-churn")["champion"] == "1"
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(store.tracking_uri)
    try:
        check_lineage(mlflow, root)
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None) if previous is None else os.environ.update(
            MLFLOW_TRACKING_URI=previous
        )


def check_lineage(mlflow, root: Path) -> None:
    info = mlflow.models.get_model_info("models:/bank-churn@champion")
    assert info.signature is not None and info.saved_input_example_info is not None
    assert set(info.metadata) >= {"threshold", "reference_metrics", "importance", "features", "as_of"}
    run = mlflow.get_run(mlflow.MlflowClient().get_model_version_by_alias("bank-churn", "champion").run_id)
    assert (
        run.data.tags["data_sha256"]
        == __import__("hashlib").sha256((root / "data" / "churn.csv").read_bytes()).hexdigest()
    )
    for metric in ("validation_roc_auc", "validation_pr_auc", "validation_f1", "validation_recall", "validation_brier"):
        assert metric in run.data.metrics
    assert run.data.params["learning_rate"] and run.data.params["threshold"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"config.json", "feature_importance.json", "features.json"} <= artifacts
    model = mlflow.sklearn.load_model("models:/bank-churn@champion")
    frame = pl.read_csv(root / "data" / "churn.csv", n_rows=50).to_pandas()
    columns = [c for group in info.metadata["features"].values() for c in group]
    probabilities = model.predict_proba(frame[columns])[:, 1]
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_predict_adds_probability_and_label(trained, tmp_path):
    root, cli, _ = trained
    assert cli("generate").exit_code == 0
    out = tmp_path / "scored.parquet"
    result = cli("predict", "--input", "data/production/bank_churn_prod.csv", "--output", str(out))
    assert result.exit_code == 0, result.output
    scored = pl.read_parquet(out)
    assert scored.height == 10_000
    assert scored["churn_probability"].is_between(0, 1).all()
    assert set(scored["churn_prediction"].unique().to_list()) <= {0, 1}
    flagged = scored.filter(pl.col("churn_prediction") == 1)["churn_probability"].min()
    spared = scored.filter(pl.col("churn_prediction") == 0)["churn_probability"].max()
    assert flagged > spared  # one threshold separates the labels
    csv_out = tmp_path / "scored.csv"
    hostile = pl.read_csv(root / "data/production/bank_churn_prod.csv").with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit('=HYPERLINK("http://evil")'))
        .otherwise(pl.col("Surname"))
        .alias("Surname")
    )
    hostile.write_csv(tmp_path / "hostile.csv")
    assert cli("predict", "-i", str(tmp_path / "hostile.csv"), "-o", str(csv_out)).exit_code == 0
    scored = pl.read_csv(csv_out)
    assert scored.height == 10_000
    assert scored["Surname"][0] == '\'=HYPERLINK("http://evil")'  # formula injection neutralised
    # its own predictions are replaced (CSV and Parquet); anyone's table only with --force
    for own in (csv_out, out):
        assert cli("predict", "-i", str(tmp_path / "hostile.csv"), "-o", str(own)).exit_code == 0
    table = tmp_path / "mine.csv"
    table.write_text("a,b\n1,2\n")
    result = cli("predict", "-i", str(tmp_path / "hostile.csv"), "-o", str(table))
    assert result.exit_code == 2 and "does not read like predictions" in result.output, result.output
    assert table.read_text() == "a,b\n1,2\n"
    assert cli("predict", "-i", str(tmp_path / "hostile.csv"), "-o", str(table), "--force").exit_code == 0
    assert "churn_probability" in table.read_text().split("\n", 1)[0]


def test_predict_protects_csv_header_cells_against_formulas(trained, tmp_path):
    root, cli, _ = trained
    assert cli("generate").exit_code == 0
    batch = pl.read_csv(root / "data/production/bank_churn_prod.csv")
    batch = batch.rename({"Surname": "=HYPERLINK(1)", "First Name": "@SUM(A1)", "Income": "Income"})
    batch.write_csv(tmp_path / "hostile.csv")
    out = tmp_path / "scored.csv"
    result = cli("predict", "-i", str(tmp_path / "hostile.csv"), "-o", str(out))
    assert result.exit_code == 0, result.output
    header = out.read_text().splitlines()[0].split(",")
    assert "'=HYPERLINK(1)" in header and "'@SUM(A1)" in header and "Income" in header
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in header)

    clash = batch.with_columns(pl.lit("x").alias("'=HYPERLINK(1)"))
    clash.write_csv(tmp_path / "clash.csv")
    result = cli("predict", "-i", str(tmp_path / "clash.csv"), "-o", str(tmp_path / "clash_scored.csv"))
    assert result.exit_code == 2 and "would be the same" in result.output
    assert not (tmp_path / "clash_scored.csv").exists()


def test_predict_protects_every_cell_a_spreadsheet_runs_as_a_formula(trained, tmp_path):
    """Text cells starting like a formula after blanks, with a fullwidth sign or a line break, and
    category columns (a Parquet file's dictionaries) were written as they were."""
    root, cli, _ = trained
    assert cli("generate").exit_code == 0
    batch = pl.read_csv(root / "data/production/bank_churn_prod.csv").head(12)
    hostile = ['=HYPERLINK("http://evil","x")', "\uff1d1+1", " =1+1", "\n=1+1", "@SUM(1+1)"]
    hostile += ["\u00a0=1+1", "\u3000=1+1", "\u200b=1+1", "\ufeff=1+1", "\ufe661+1", "\ufe621+1", "Smith"]
    for kind in ("csv", "parquet"):
        frame = batch.with_columns(pl.Series("Surname", hostile), pl.Series("First Name", hostile))
        if kind == "parquet":
            frame = frame.with_columns(pl.col("First Name").cast(pl.Categorical))
        source = tmp_path / f"hostile.{kind}"
        frame.write_csv(source) if kind == "csv" else frame.write_parquet(source)
        out = tmp_path / f"scored_{kind}.csv"
        result = cli("predict", "-i", str(source), "-o", str(out))
        assert result.exit_code == 0, result.output
        scored = pl.read_csv(out)
        for name in ("Surname", "First Name"):
            assert scored[name].to_list() == ["'" + cell for cell in hostile[:-1]] + ["Smith"], (kind, name)
    # a column of bytes (Parquet binary) cannot be a CSV's: one line, not an internal error
    batch.with_columns(pl.lit(b"\x00\x01").alias("blob")).write_parquet(tmp_path / "bytes.parquet")
    result = cli("predict", "-i", str(tmp_path / "bytes.parquet"), "-o", str(tmp_path / "bytes.csv"))
    assert result.exit_code == 2 and "column 'blob' holds bytes, which a CSV file cannot hold" in result.output
    assert not (tmp_path / "bytes.csv").exists()


def test_predict_reports_each_step_through_the_progress_callback(trained, tmp_path):
    """The library only calls back; the CLI draws (a bar once a command has run for a second)."""
    from churnops.pipeline.scoring import predict

    root, cli, _ = trained
    assert cli("generate").exit_code == 0
    calls = []
    outcome = predict(
        load_config(),
        root / "data/production/bank_churn_prod.csv",
        tmp_path / "scored.parquet",
        lambda what, done, total: calls.append((what, done, total)),
    )
    stages = list(dict.fromkeys(what for what, _, _ in calls))
    assert stages == ["loading the champion", "scoring bank_churn_prod.csv", "writing scored.parquet"]
    scoring = [(done, total) for what, done, total in calls if what.startswith("scoring")]
    assert scoring[-1][0] == scoring[-1][1] > 0  # bytes read, up to the whole file
    assert set(outcome.timings) == {"model_load_s", "score_s", "write_s"}


def test_the_trained_model_needs_only_churnops_trusted_types(trained):
    """The artifact's own list is never used; ours must cover what training writes, and no more.

    Checked in a fresh process that imports skops as churnops does (no scikit-learn estimator
    trusted by default), so every type in the file must be on churnops' list."""
    import subprocess
    import sys

    import yaml

    from churnops.integrations.model import SKOPS_TRUSTED_TYPES

    version = registry.find_alias(store_of(load_config()), "bank-churn", "champion")
    folder = Path(version.location.removeprefix("file://"))
    code = (
        "import json, sys; from churnops.integrations.model_artifact import import_skops; "
        "print(json.dumps(import_skops().get_untrusted_types(file=sys.argv[1])))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(folder / "model.skops")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == set(SKOPS_TRUSTED_TYPES)
    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["sklearn"]
    assert flavor["serialization_format"] == "skops" and not flavor.get("code")


def test_the_registry_is_read_without_mlflow_and_agrees_with_it(trained, monkeypatch):
    """predict and monitor find the champion with one read-only SQL query; MLflow gives the same answer."""
    import sqlite3
    import subprocess
    import sys

    root, _, _ = trained
    store = store_of(load_config())
    with sqlite3.connect(store.local_database) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision in registry.KNOWN_SCHEMA_REVISIONS, f"MLflow's schema moved to {revision}: check the query"
    direct = registry.find_alias(store, "bank-churn", "champion")
    monkeypatch.setattr(registry, "KNOWN_SCHEMA_REVISIONS", frozenset())
    through_mlflow = registry.find_alias(store, "bank-churn", "champion")
    assert direct == through_mlflow
    assert registry.find_alias(store, "bank-churn", "no-such-alias") is None
    monkeypatch.undo()
    assert registry.find_alias(store, "bank-churn", "no-such-alias") is None

    code = (
        "import sys\n"
        "from churnops.config import load_config\n"
        "from churnops.integrations import mlflow_registry as registry\n"
        "from churnops.pipeline.modeling import store_of\n"
        "assert registry.find_alias(store_of(load_config()), 'bank-churn', 'champion') is not None\n"
        "print('mlflow' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"


def test_monitor_adds_prediction_drift_and_performance(trained):
    root, cli, _ = trained
    assert cli("generate").exit_code == 0
    result = cli("monitor")
    assert result.exit_code == 0, result.output
    model = metrics(root)["model"]
    assert model["version"] == "1" and model["alias"] == "champion"
    assert model["prediction_drift"]["test"] == "wasserstein"
    assert model["realized"]["rows"] == 10_000 and model["estimated"]["rows"] == 10_000
    assert model["reference"]["roc_auc"] > model["realized"]["roc_auc"]  # 4.5 points of random churners hurt
    assert model["decay"]["basis"] == "realized" and model["decay"]["max_auc_drop"] == 0.05
    assert set(model["timings"]) == {"model_load_s", "score_current_s", "score_reference_s"}
    assert model["reference_scores_cache"] in {"hit", "miss"}
    assert "error" not in model
    predictions = root / ".churnops" / "profiles" / "predictions"
    cached = list(predictions.iterdir())
    for path in cached:  # --no-cache reads no cache, the model's neither: a forged one is not taken
        np.save(path, np.full(20_000, 0.5), allow_pickle=False)
    forged = {path: path.read_bytes() for path in cached}
    again = cli("monitor", "--no-cache")
    assert again.exit_code == 0, again.output
    assert metrics(root)["model"]["reference_scores_cache"] == "off"
    assert metrics(root)["model"]["reference"]["roc_auc"] == model["reference"]["roc_auc"]
    assert {path: path.read_bytes() for path in predictions.iterdir()} == forged  # nor written
    assert set(model["important_drifted"]) <= {"Balance", "Credit Score", "Income"}
    assert model["drifted_by_importance"][0] in {"Balance", "Credit Score", "Income"}
    html = (root / "monitoring" / "monitoring_report.html").read_text()
    assert 'id="model"' in html and "estimated (CBPE)" in html and "Prediction drift" in html


def test_a_batch_with_one_outcome_only_is_monitored_on_the_estimated_performance(trained):
    """All labels 0 (or a batch of one row): ROC-AUC is undefined, so nothing is realized - the
    run still writes its outputs, with the decay judged on the estimate."""
    root, cli, _ = trained
    assert cli("generate").exit_code == 0
    batch = pl.read_csv(root / "data" / "production" / "bank_churn_prod.csv")
    for name, frame in (("all_zero", batch.with_columns(pl.lit(0).alias("Churn Flag"))), ("one_row", batch.head(1))):
        frame.write_parquet(root / f"{name}.parquet")
        result = cli("monitor", "--current", f"{name}.parquet")
        assert result.exit_code == 0, result.output
        model = metrics(root)["model"]
        assert model["realized"] is None and model["decay"]["basis"] == "estimated", name


def test_a_dead_model_is_an_alert_with_a_red_banner_and_exit_3(tmp_path):
    """The concept scenario: no feature drifts, but the champion no longer ranks churners. The run
    must say so first: a trigger, an alert banner led by model decay, exit 3 with --fail-on-drift.
    Its own workspace: other tests here retrain the champion on the concept batch."""
    import subprocess
    import sys

    churnops = [sys.executable, "-m", "churnops"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*churnops, *args], cwd=tmp_path, capture_output=True, text=True, timeout=900)

    assert run("data", "init").returncode == 0
    trained_run = run("train")
    assert trained_run.returncode == 0, trained_run.stderr
    assert run("generate", "--scenario", "concept").returncode == 0
    done = run("monitor", "--fail-on-drift")
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert done.stdout.startswith("ALERT"), done.stdout
    document = metrics(tmp_path)
    kinds = [r["kind"] for r in document["verdict"]["reasons"]]
    assert kinds[0] == "model decay" and document["verdict"]["trigger"] is True
    assert document["dataset_drift"]["detected"] is False  # the features did not move
    assert (tmp_path / "trigger.txt").read_text().startswith("ALERT: model decay")
    html = (tmp_path / "monitoring" / "monitoring_report.html").read_text()
    banner = html[html.index('<header class="banner') : html.index("</header>")]
    assert "banner-alert" in banner and "model decay" in banner and "DECAY" in banner
    assert "Nothing to do" not in html
    note = run("notify", "--dry-run")
    assert note.returncode == 0 and "model decay" in note.stdout


@pytest.mark.parametrize("scenario", ["cov_none", "cov_credit", "cov_tenure", "cov_complaints"])
def test_cbpe_lands_within_003_of_the_realized_roc_auc_under_covariate_shift(trained, scenario):
    root, cli, _ = trained
    result = cli("generate", "--scenario", scenario, "--rows", "20000:60000")
    assert result.exit_code == 0, result.output
    assert cli("monitor").exit_code == 0
    model = metrics(root)["model"]
    realized, estimated = model["realized"]["roc_auc"], model["estimated"]["roc_auc"]
    print(f"{scenario}: realized {realized:.4f}, estimated {estimated:.4f}")
    assert abs(estimated - realized) <= 0.03


def test_retrain_promotes_only_a_clearly_better_challenger(trained):
    root, cli, _ = trained
    store = store_of(load_config())
    assert cli("generate", "--intensity", "0").exit_code == 0
    result = cli("retrain")
    assert result.exit_code == 0, result.output
    assert "the champion stays" in result.output
    aliases = registry.aliases(store, "bank-churn")
    assert aliases["champion"] == "1" and aliases["challenger"] == "2"
    again = cli("retrain")  # deterministic given the seeds
    assert again.output.split("ROC-AUC ")[1][:6] == result.output.split("ROC-AUC ")[1][:6]

    assert cli("generate", "--scenario", "concept").exit_code == 0
    result = cli("retrain")
    assert result.exit_code == 0, result.output
    assert "promoted" in result.output
    aliases = registry.aliases(store, "bank-churn")
    assert aliases["champion"] == "4" and aliases["previous-champion"] == "1"


def test_pipeline_stage_5_retrains_on_drift(trained):
    root, cli, _ = trained
    assert cli("generate").exit_code == 0
    result = cli("pipeline", "--retrain")
    summary = json.loads((root / "monitoring" / "pipeline_summary.json").read_text())
    retraining = summary["stages"][4]
    assert retraining["status"] == "success", result.output
    assert retraining["outputs"]["decision"] in {"promoted", "kept the champion"}
    assert retraining["detail"] == retraining["outputs"]["reason"] and "ROC-AUC" in retraining["detail"]
    assert "challenger_auc" in retraining["outputs"]


def test_no_model_no_problem(bank_workspace, cli):
    cli("generate")
    assert cli("monitor").exit_code == 0
    document = json.loads((bank_workspace / "monitoring" / "monitoring_metrics.json").read_text())
    assert document["model"] is None
    result = cli("predict", "--input", "data/production/bank_churn_prod.csv")
    assert result.exit_code == 2 and "run 'churnops train' first" in result.output


def test_a_model_that_cannot_be_checked_is_never_a_green_run(tmp_path):
    """An unreachable registry, a registry gone while the previous run checked a champion, a batch
    the champion cannot score, and model.monitor = "required" without any champion: each was a run
    "without a model" under a green banner (one warning at most). Each is now the finding "the model
    could not be checked", an alert, with what failed and nothing a server said."""
    import socket
    import subprocess
    import sys

    def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "churnops", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**os.environ, **(env or {})},
        )  # fmt: skip

    def unchecked(done: subprocess.CompletedProcess[str], why: str) -> None:
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("ALERT"), done.stdout
        assert f"the model could not be checked: {why}" in done.stdout, done.stdout
        document = metrics(tmp_path)
        assert why in document["model"]["error"] and document["verdict"]["trigger"] is True
        assert "model unchecked" in [reason["kind"] for reason in document["verdict"]["reasons"]]

    assert run("data", "init").returncode == 0
    assert run("generate", "--scenario", "none").returncode == 0
    assert run("monitor").stdout.startswith("OK")  # no champion, none expected
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    # one run that could not reach a registry checked no champion: the next ones expect none
    unchecked(run("monitor", env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}), "the model registry cannot")
    assert run("monitor").stdout.startswith("OK")
    required = run("monitor", "--set", "model.monitor=required")
    unchecked(required, "there is no model registry at sqlite:///")
    assert run("train").returncode == 0
    fine = run("monitor")
    assert "model bank-churn v1: ROC-AUC change" in fine.stdout and "not checked" not in fine.stdout, fine.stdout
    # the registry's file with a query (SQLAlchemy's options) is the same file: it was "missing", a green run
    queried = run("monitor", "--set", "model.tracking_uri=sqlite:///mlflow.db?timeout=20")
    assert "model bank-churn v1: ROC-AUC change" in queried.stdout, queried.stdout + queried.stderr
    refused = run("monitor", env={"MLFLOW_TRACKING_URI": f"http://user:S3cretPassw0rd@127.0.0.1:{port}"})
    unchecked(refused, f"the model registry cannot be read: MLflow (http://***@127.0.0.1:{port}): cannot reach")
    assert "S3cretPassw0rd" not in refused.stdout + refused.stderr
    (tmp_path / "mlflow.db").rename(tmp_path / "mlflow-moved.db")
    gone = run("monitor")
    unchecked(gone, "there is no model registry at sqlite:///")
    assert "yet an earlier run checked bank-churn v1" in gone.stdout
    # a run with the model off in between checks none and does not make the next one forget it
    assert run("monitor", "--set", "model.monitor=off").stdout.startswith("OK")
    assert metrics(tmp_path)["model"] is None
    again = run("monitor")
    unchecked(again, "there is no model registry at sqlite:///")
    assert "yet an earlier run checked bank-churn v1" in again.stdout
    (tmp_path / "mlflow-moved.db").rename(tmp_path / "mlflow.db")
    # numbers as monitoring reads them are scored as it reads them: grouped digits, and a few
    # cells that are not numbers (missing to the model) - this was "the model could not be checked"
    batch = pl.read_csv(tmp_path / "data" / "production" / "bank_churn_prod.csv")
    balance = pl.col("Balance").map_elements(lambda v: f"{v:,.2f}", return_dtype=pl.String)
    odd = batch.with_columns(
        pl.when(pl.int_range(pl.len()) < 6).then(pl.lit("n/a")).otherwise(balance).alias("Balance")
    )
    odd.write_csv(tmp_path / "odd_balance.csv")
    scored = run("monitor", "-p", "odd_balance.csv")
    assert "model bank-churn v1: ROC-AUC change" in scored.stdout, scored.stdout + scored.stderr
    assert "the model scored cells that are not numbers as missing values: Balance (6 cells)" in scored.stderr
    assert metrics(tmp_path)["model"]["realized"]["rows"] == batch.height
    # an input that is mostly not numbers is not scored as if it were missing: the model is not checked
    batch.with_columns(pl.lit("n/a").alias("Balance")).write_csv(tmp_path / "no_balance.csv")
    unchecked(
        run("monitor", "-p", "no_balance.csv"),
        "the batch could not be scored: the model's input Balance: 10,000 of 10,000 cells",
    )
    # a categorical input written another way (country codes): every customer would be scored as
    # "unknown country" under a model check that looked fine - now the model is not checked
    segment = pl.col("Customer Segment")
    codes = batch.with_columns(segment.replace({"Corporate": "C", "Retail": "R", "SME": "S"}))
    codes.write_csv(tmp_path / "codes.csv")
    unchecked(
        run("monitor", "-p", "codes.csv"),
        "the batch could not be scored: the model's input Customer Segment: 10,000 of 10,000 cells hold categories "
        "the model never learned (such as '",
    )
    assert "it learned 'Corporate', 'Retail', 'SME') - scored as unknown" in metrics(tmp_path)["model"]["error"]
    # a few strange values are scored as unknown, and the run says which
    few = batch.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("Atlantis")).otherwise(segment).alias("Customer Segment")
    )
    few.write_csv(tmp_path / "few.csv")
    scored = run("monitor", "-p", "few.csv")
    assert "model bank-churn v1: ROC-AUC change" in scored.stdout, scored.stdout + scored.stderr
    assert (
        "the model scored categories it never learned as unknown: Customer Segment (3 cells, such as 'Atlantis')"
        in (scored.stderr)
    )


def test_a_model_no_better_than_chance_is_not_made_champion_and_alerts_if_it_is(tmp_path):
    """Labels shuffled by mistake: the model ranks customers as a coin would (validation ROC-AUC
    0.50), and train made it the champion while monitor said OK. train now registers it without the
    champion alias (exit 2, saying why), and a champion below model.min_auc alerts."""
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "churnops", *args], cwd=tmp_path, capture_output=True, text=True)

    assert run("data", "init").returncode == 0
    reference = tmp_path / "data" / "churn.csv"
    frame = pl.read_csv(reference)
    labels = frame["Churn Flag"].sample(fraction=1.0, shuffle=True, seed=3)
    frame.with_columns(labels.alias("Churn Flag")).write_csv(reference)
    refused = run("train")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "v1 is registered but NOT made the champion" in refused.stderr and "below model.min_auc 0.6" in (
        refused.stderr
    )
    assert run("generate", "--scenario", "none").returncode == 0
    alone = run("monitor")
    assert alone.stdout.startswith("OK") and metrics(tmp_path)["model"] is None, alone.stdout  # no champion
    assert run("train", "--set", "model.min_auc=0").returncode == 0
    dead = run("monitor")
    assert dead.stdout.startswith("ALERT"), dead.stdout
    assert "model near chance: ROC-AUC 0.5" in dead.stdout and "is below model.min_auc 0.6" in dead.stdout
    decay = metrics(tmp_path)["model"]["decay"]
    assert decay["below_min_auc"] is True and decay["detected"] is True


def test_the_model_reads_dates_as_monitoring_does_whatever_the_row_order(tmp_path):
    """pandas guessed the format of a date input from its first row: a batch of day-first dates
    whose first row read both ways (04.01.2016) was read month-first - every date past the 12th
    missing - and the same customers in another order got other scores (672 of 3,000 predictions
    flipped). Dates are now read as the column writes them (decided from the whole column, kept
    with the model), and a date input the model cannot read is refused like a numeric one."""
    import subprocess
    import sys

    import numpy as np

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "churnops", *args], cwd=tmp_path, capture_output=True, text=True)

    def customers(n: int, seed: int) -> pl.DataFrame:
        rng = np.random.default_rng(seed)
        age = rng.integers(18, 90, n)
        days = rng.integers(0, 3_000, n)
        logit = -2 + 0.03 * (age - 50) + 0.0009 * (3_000 - days)
        opened = pl.Series(np.datetime64("2015-01-01") + days.astype("timedelta64[D]")).dt.strftime("%d.%m.%Y")
        churned = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
        return pl.DataFrame(
            {"customer_id": [f"C{i}" for i in range(n)], "opened": opened, "age": age, "churned": churned}
        )

    customers(4_000, 1).write_csv(tmp_path / "ref.csv")
    (tmp_path / "churnops.toml").write_text(
        '[paths]\nreference = "ref.csv"\n[columns]\ntarget = "churned"\nid = ["customer_id"]\ndatetime = ["opened"]\n'
    )
    done = run("train")
    assert done.returncode == 0, done.stderr
    loaded = registry.load_alias(store_of(load_config(tmp_path / "churnops.toml")), "bank-churn", "champion")
    assert loaded.metadata.date_formats == {"opened": "day-first"}  # decided from the whole column, kept
    batch = customers(2_000, 2).drop("churned")
    day = batch["opened"].str.slice(0, 2).cast(pl.Int32)
    ambiguous_first = pl.concat([batch.filter(day <= 12), batch.filter(day > 12)])
    clear_first = pl.concat([batch.filter(day > 12), batch.filter(day <= 12)])
    ambiguous_first.write_csv(tmp_path / "a.csv")
    clear_first.write_csv(tmp_path / "b.csv")
    for name in ("a", "b"):
        done = run("predict", "-i", f"{name}.csv", "-o", f"{name}_scored.csv")
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    a = pl.read_csv(tmp_path / "a_scored.csv").sort("customer_id")
    b = pl.read_csv(tmp_path / "b_scored.csv").sort("customer_id")
    assert a["churn_probability"].to_list() == b["churn_probability"].to_list()
    # as the model learned them: the same scores as the dates written as ISO
    batch.with_columns(pl.col("opened").str.to_date("%d.%m.%Y")).write_csv(tmp_path / "iso.csv")
    assert run("predict", "-i", "iso.csv", "-o", "iso_scored.csv").returncode == 0
    iso = pl.read_csv(tmp_path / "iso_scored.csv").sort("customer_id")
    assert iso["churn_probability"].to_list() == a["churn_probability"].to_list()
    # dates it cannot read: refused when most are, scored as missing with a warning when a few are
    batch.with_columns(pl.lit("garbage").alias("opened")).write_csv(tmp_path / "garbage.csv")
    done = run("predict", "-i", "garbage.csv")
    assert done.returncode == 2, done.stderr
    assert "the model's input opened: 2,000 of 2,000 cells are not dates it can read (such as 'garbage'" in done.stderr
    few = batch.with_columns(
        pl.when(pl.int_range(pl.len()) < 4).then(pl.lit("soon")).otherwise(pl.col("opened")).alias("opened")
    )
    few.write_csv(tmp_path / "few.csv")
    done = run("predict", "-i", "few.csv")
    assert done.returncode == 0, done.stderr
    assert (
        "the model scored cells that are not dates as missing values: opened (4 cells, such as 'soon')" in done.stderr
    )
    # month and year only ('Aug 2016'): read as the year 20 or so by a guess - now no date at all
    batch.with_columns(pl.col("opened").str.to_date("%d.%m.%Y").dt.strftime("%b %Y")).write_csv(tmp_path / "my.csv")
    done = run("predict", "-i", "my.csv")
    assert done.returncode == 2 and "2,000 of 2,000 cells are not dates it can read" in done.stderr, done.stderr

    # a model of ISO dates meets a batch whose dates all read both ways: refused, never guessed
    iso_ref = customers(4_000, 1).with_columns(pl.col("opened").str.to_date("%d.%m.%Y"))
    (tmp_path / "iso").mkdir()
    iso_ref.write_csv(tmp_path / "iso" / "ref.csv")
    (tmp_path / "iso" / "churnops.toml").write_text((tmp_path / "churnops.toml").read_text())
    assert run("train", "-c", "iso/churnops.toml").returncode == 0
    as_iso = pl.col("opened").str.to_date("%d.%m.%Y")
    both = batch.filter(day <= 12).with_columns(as_iso.dt.strftime("%m/%d/%Y"))
    both.write_csv(tmp_path / "both.csv")
    done = run("predict", "-c", "iso/churnops.toml", "-i", "both.csv")
    assert done.returncode == 2 and "read as day/month and as month/day: set columns.date_formats" in done.stderr
    # as soon as the whole file tells, it is read that way, whatever its first rows
    pl.concat([both, batch.filter(day > 12).with_columns(as_iso.dt.strftime("%m/%d/%Y"))]).write_csv(
        tmp_path / "told.csv"
    )
    assert run("predict", "-c", "iso/churnops.toml", "-i", "told.csv", "-o", "told_scored.csv").returncode == 0
    ordered = pl.concat([batch.filter(day <= 12), batch.filter(day > 12)]).with_columns(as_iso)
    ordered.write_csv(tmp_path / "ordered.csv")
    assert run("predict", "-c", "iso/churnops.toml", "-i", "ordered.csv", "-o", "ordered_scored.csv").returncode == 0
    expected = pl.read_csv(tmp_path / "ordered_scored.csv")["churn_probability"].to_list()
    assert pl.read_csv(tmp_path / "told_scored.csv")["churn_probability"].to_list() == expected
    # a reference of dates no way reads ('Aug 2016'): no usable value - the model learns without them
    customers(4_000, 1).with_columns(as_iso.dt.strftime("%b %Y")).write_csv(tmp_path / "iso" / "ref.csv")
    done = run("train", "-c", "iso/churnops.toml")
    assert done.returncode == 0 and "opened" not in done.stdout.split("most important inputs")[1], done.stdout


def test_inputs_far_outside_what_the_model_learned_are_told_or_refused(tmp_path):
    """A batch writing 3-decimal rates with a decimal comma (0,578 and 3,339) was read as 578 and
    3339 - thousands - and scored with exit 0 (2,019 of 4,000 predictions changed); placeholder
    birth dates (9999-12-31) were scored as customers born in the year 9999 without a word. The
    model keeps the range of each numerical and date input it learned; a batch mostly far outside
    it is refused, a few such cells are scored with a warning naming the column."""
    import subprocess
    import sys

    import numpy as np

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "churnops", *args], cwd=tmp_path, capture_output=True, text=True)

    def customers(n: int, seed: int) -> pl.DataFrame:
        rng = np.random.default_rng(seed)
        rate = np.round(rng.uniform(0.5, 3.5, n), 3)
        born = rng.integers(0, 20_000, n)
        logit = -2 + 0.8 * (rate - 2) + 0.0001 * (born - 10_000)
        churned = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
        birth = pl.Series(np.datetime64("1950-01-01") + born.astype("timedelta64[D]")).dt.strftime("%Y-%m-%d")
        return pl.DataFrame(
            {"customer_id": [f"C{i}" for i in range(n)], "rate": rate, "birth": birth, "churned": churned}
        )

    customers(4_000, 1).write_csv(tmp_path / "ref.csv")
    (tmp_path / "churnops.toml").write_text(
        '[paths]\nreference = "ref.csv"\n[columns]\ntarget = "churned"\nid = ["customer_id"]\ndatetime = ["birth"]\n'
    )
    done = run("train")
    assert done.returncode == 0, done.stderr
    loaded = registry.load_alias(store_of(load_config(tmp_path / "churnops.toml")), "bank-churn", "champion")
    low, high = loaded.metadata.input_ranges["rate"]
    assert 0.5 <= low < 0.51 and 3.49 < high <= 3.5
    assert loaded.metadata.input_ranges["birth"][0].startswith("1950-01")
    batch = customers(2_000, 2).drop("churned")
    # rates written with a decimal comma in a ';' file: most were read as thousands; now none is a
    # number (a comma before three digits among 0,578 is a decimal comma) - refused, with the fix
    text = batch.with_columns(pl.col("rate").map_elements(lambda v: f"{v:.3f}".replace(".", ","), pl.String))
    text.write_csv(tmp_path / "comma.csv", separator=";")
    done = run("predict", "-i", "comma.csv", "--set", "data.separator=';'")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the model's input rate: 2,000 of 2,000 cells are not numbers (such as '" in done.stderr, done.stderr
    assert done.stderr.rstrip().endswith("; decimal commas: set data.decimal = ','"), done.stderr
    done = run("predict", "-i", "comma.csv", "--set", "data.separator=';'", "--set", "data.decimal=','")
    assert done.returncode == 0 and "far outside" not in done.stderr, done.stderr
    # a few placeholder dates: scored, and said
    sentinel = batch.with_columns(
        pl.when(pl.int_range(pl.len()) % 10 == 0).then(pl.lit("9999-12-31")).otherwise(pl.col("birth")).alias("birth")
    )
    sentinel.write_csv(tmp_path / "sentinel.csv")
    done = run("predict", "-i", "sentinel.csv")
    assert done.returncode == 0, done.stderr
    assert (
        "the model scored values far outside what it learned: birth (200 cells, such as 9999-12-31; it learned 1950-"
        in (done.stderr)
    )
    # values inside what it learned: not a word
    batch.write_csv(tmp_path / "plain.csv")
    done = run("predict", "-i", "plain.csv")
    assert done.returncode == 0 and "far outside" not in done.stderr, done.stderr
    # an input the model learned as one value (a product launched since): it cannot split on it
    from churnops.pipeline.scoring import _far_outside

    assert _far_outside(pl.Series([0.0, 5.0, 1e6]), 0.0, 0.0) == (0, None)
    assert _far_outside(pl.Series([-500.0, 10.0, 1e6]), 0.0, 1_000.0) == (1, "1000000")
    # dates move on: accounts opened two years after what the model learned are not far outside
    from datetime import date

    assert _far_outside(pl.Series([date(2022, 10, 15)]), "2020-01-01", "2020-12-28") == (0, None)
    assert _far_outside(pl.Series([date(9999, 12, 31)]), "2020-01-01", "2020-12-28") == (1, "9999-12-31")


@pytest.mark.parametrize(
    "ranges",
    [
        {"Balance": [1.0]},
        {"Balance": [2.0, 1.0]},
        {"Balance": ["a", "b"]},
        {"Balance": [0, float("inf")]},
        {"Unknown": [0, 1]},
        {"Opened": ["2020-01-01", "2019-01-01"]},
        {"Opened": ["2020-13-01", "2021-01-01"]},
        {"Opened": [1, 2]},
    ],
)
def test_a_models_input_ranges_are_checked_before_use(ranges):
    from churnops.integrations.model_artifact import ModelRefusedError, parse_metadata

    spec = {"numerical": ["Balance"], "categorical": [], "dates": ["Opened"]}
    good = parse_metadata(
        {"threshold": 0.3, "features": spec, "as_of": "2026-01-31", "input_ranges": {"Balance": [0, 5.5]}}
    )
    assert good.input_ranges == {"Balance": [0, 5.5]}
    with pytest.raises(ModelRefusedError, match="input_ranges"):
        parse_metadata({"threshold": 0.3, "features": spec, "as_of": "2026-01-31", "input_ranges": ranges})


def test_a_model_of_codes_with_leading_zeros_scores_them_from_a_csv(tmp_path):
    """A model learned branch codes from a Parquet reference, as text (``07014``); a CSV of the
    same customers was read with the codes as numbers (7014): ``predict`` refused it (categories
    the model never learned) and the monitoring's model check was skipped. The CSV's codes are
    now read as text: the same scores as from Parquet, and the predictions file keeps the zeros."""
    import subprocess
    import sys

    import numpy as np

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "churnops", *args], cwd=tmp_path, capture_output=True, text=True)

    rng = np.random.default_rng(3)
    pool = [f"{rng.choice([0, 0, 1])}{rng.integers(1000, 10000)}" for _ in range(12)]
    risky = set(pool[:4])

    def customers(n: int) -> pl.DataFrame:
        branch = rng.choice(pool, n)
        age = rng.integers(18, 90, n)
        logit = -1.5 + 2.0 * np.isin(branch, list(risky)) + 0.02 * (age - 50)
        churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        return pl.DataFrame({"branch": branch, "age": age, "churned": churned})

    customers(4_000).write_parquet(tmp_path / "ref.parquet")
    batch = customers(1_500)
    batch.write_parquet(tmp_path / "cur.parquet")
    batch.write_csv(tmp_path / "cur.csv")
    (tmp_path / "churnops.toml").write_text(
        '[paths]\nreference = "ref.parquet"\nproduction = "cur.csv"\n[columns]\ntarget = "churned"\n'
        'categorical = ["branch"]\n'
    )
    done = run("train")
    assert done.returncode == 0, done.stderr
    scored = {}
    for kind in ("parquet", "csv"):
        done = run("predict", "-i", f"cur.{kind}", "-o", f"scored_{kind}.csv")
        assert done.returncode == 0 and "never learned" not in done.stderr, done.stderr
        scored[kind] = pl.read_csv(tmp_path / f"scored_{kind}.csv", schema_overrides={"branch": pl.String})
    assert scored["csv"]["churn_probability"].to_list() == scored["parquet"]["churn_probability"].to_list()
    assert scored["csv"]["branch"].to_list() == batch["branch"].to_list()
    batch.write_csv(tmp_path / "cur_dc.csv", separator=";")  # a file with decimal commas reads them as text too
    done = run(
        "predict", "-i", "cur_dc.csv", "-o", "scored_dc.csv", "--set", "data.decimal=','", "--set", "data.separator=';'"
    )
    assert done.returncode == 0 and "never learned" not in done.stderr, done.stderr
    done = run("monitor")
    assert done.returncode == 0 and "model check skipped" not in done.stderr, done.stderr
    model = metrics(tmp_path)["model"]
    assert model["realized"]["roc_auc"] > 0.6


def test_a_category_learned_as_missing_leaves_the_model_scoring_its_own_data(tmp_path):
    """A text input with a few empty cells in training: the model learned them as a category of
    their own, and every present cell then counted as one it never learned - predict refused even
    the training file, and every monitoring run said "the model could not be checked"."""
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    n = 3000
    x = rng.normal(size=n)
    segment = rng.choice(["a", "b", "c"], n).astype(object)
    segment[rng.random(n) < 0.05] = None
    churned = np.where(rng.random(n) < 1 / (1 + np.exp(-2 * x)), "yes", "no")
    pl.DataFrame({"x": x, "seg": segment, "churned": churned}).write_csv(tmp_path / "own.csv")
    (tmp_path / "churnops.toml").write_text(
        '[paths]\nreference = "own.csv"\nproduction = "own.csv"\n'
        '[columns]\ntarget = "churned"\ntarget_positive = "yes"\n'
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "churnops", *args], cwd=tmp_path, capture_output=True, text=True)

    trained = run("train")
    assert trained.returncode == 0, trained.stderr
    scored = run("predict", "-i", "own.csv", "-o", "scored.csv")
    assert scored.returncode == 0, scored.stderr
    assert pl.read_csv(tmp_path / "scored.csv")["churn_probability"].null_count() == 0
    monitored = run("monitor")
    assert monitored.returncode == 0 and "could not be checked" not in monitored.stdout, monitored.stdout
    assert metrics(tmp_path)["model"]["realized"]["roc_auc"] > 0.7
    # a batch that writes its labels 1/0 where the reference says yes/no is measured all the same
    # (it fell back to the estimate, and a dead model showed no alert); and one whose labels came
    # for some rows only is measured on those, from 500 of them on
    ones = pl.read_csv(tmp_path / "own.csv").with_columns((pl.col("churned") == "yes").cast(pl.Int64))
    for name, labelled in (("ones.csv", 3000), ("half.csv", 1500), ("few.csv", 300)):
        ones.with_columns(pl.when(pl.int_range(pl.len()) < labelled).then(pl.col("churned"))).write_csv(tmp_path / name)
        done = run("monitor", "-p", name)
        assert done.returncode == 0, done.stderr
        model = metrics(tmp_path)["model"]
        if labelled >= 500:
            assert model["decay"]["basis"] == "realized" and model["realized"]["rows"] == labelled, (name, model)
        else:
            assert model["decay"]["basis"] == "estimated" and model["realized"] is None, (name, model)


def test_a_model_that_cannot_score_what_it_learned_from_is_never_pointed_at(trained, monkeypatch):
    """The last line of defence: whatever makes a fresh model refuse the rows it learned from (here
    every category read as new), train registers it without the alias and says why, and retrain
    keeps the champion."""
    from churnops.pipeline import scoring

    root, cli, _ = trained
    store = store_of(load_config())
    before = registry.aliases(store, "bank-churn")
    monkeypatch.setattr(scoring, "_unseen", lambda column, known: (column.drop_nulls().len(), "x"))
    result = cli("train", "--set", "model.name=bank-churn")
    assert result.exit_code == 2, result.output
    assert "is registered but not made the champion: it cannot score the data it learned from" in result.output
    assert "categories the model never learned" in result.output
    assert registry.aliases(store, "bank-churn")["champion"] == before["champion"]

    monkeypatch.undo()
    assert cli("generate", "--scenario", "concept").exit_code == 0
    monkeypatch.setattr(scoring, "_unseen", lambda column, known: (column.drop_nulls().len(), "x"))
    result = cli("retrain", "--set", "retrain.min_improvement=0")
    assert result.exit_code == 0, result.output
    assert "but it cannot score the batch it learned from" in result.output and "the champion stays" in result.output
    after = registry.aliases(store, "bank-churn")
    assert after["champion"] == before["champion"] and after["challenger"] != before.get("challenger")


def test_pipeline_stage_5_waits_for_labels(trained):
    """A nightly batch whose labels have not come yet: monitored all the same, and retraining is
    skipped, not a failure of the whole pipeline (exit 4) every night."""
    root, cli, _ = trained
    assert cli("generate", "--scenario", "strong").exit_code == 0
    batch = root / "data" / "production" / "bank_churn_prod.csv"
    frame = pl.read_csv(batch)
    try:
        frame.drop("Churn Flag").write_csv(batch)
        cli("pipeline", "--retrain")  # exit 4 all the same: this workspace has no git for DVC (stage 3)
        retraining = json.loads((root / "monitoring" / "pipeline_summary.json").read_text())["stages"][4]
        assert retraining["status"] == "skipped", retraining
        assert retraining["detail"] == "no labels in the batch yet (no column 'Churn Flag'): retraining waits for them"
        result = cli("retrain")  # by hand: one line that says the labels have not come
        assert result.exit_code == 2 and "no labels in column 'Churn Flag' yet" in result.output, result.output
        assert "bank_churn_prod.csv" in result.output
        # the history tells an ROC-AUC estimated without labels from one measured on them
        assert cli("monitor").exit_code == 0
        frame.write_csv(batch)  # with its labels again
        assert cli("monitor").exit_code == 0
        header, estimated, realized = cli("history", "-n", "2").output.splitlines()
        column = header.split().index("AUC") + 1  # the date is two cells
        assert estimated.split()[column].startswith("~0.") and realized.split()[column].startswith("0."), (
            estimated,
            realized,
        )
        frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("Churn Flag")).write_csv(batch)
        cli("pipeline", "--retrain")
        retraining = json.loads((root / "monitoring" / "pipeline_summary.json").read_text())["stages"][4]
        assert retraining["status"] == "skipped" and "is empty" in retraining["detail"], retraining
        # labels for some rows only: too few, stage 5 waits; enough, the labelled rows are learned from
        for labelled, waits in ((300, True), (4000, False)):
            kept = pl.when(pl.int_range(pl.len()) < labelled).then(pl.col("Churn Flag"))
            frame.with_columns(kept.alias("Churn Flag")).write_csv(batch)
            cli("pipeline", "--retrain")
            retraining = json.loads((root / "monitoring" / "pipeline_summary.json").read_text())["stages"][4]
            if waits:
                assert (
                    retraining["status"] == "skipped"
                    and "only 300 rows of the batch have their label yet" in (retraining["detail"])
                ), retraining
            else:
                assert retraining["status"] == "success", retraining
                assert retraining["outputs"]["holdout_rows"] == 1200  # 30% of the 4,000 labelled rows
    finally:
        assert cli("generate", "--force").exit_code == 0  # the batch edited here is no longer the one it made


def test_the_configuration_logged_with_a_model_holds_no_secret(trained):
    """MLflow's readers (every data scientist) read the run's config.json: the Pushgateway's password
    and path token, a database password in a query and a remote's password were there in clear."""
    root, cli, _ = trained
    secrets = {
        "metrics.pushgateway_url": "http://pgw:Pgw4ssw0rdSecret@127.0.0.1:9/gw/Zq8TokenPathSeg77/",
        "dvc.remote_url": "https://dvcuser:DvcPassw0rd55@dvc.example/store",
        "history.url": "postgresql://h@db.example/x?t=hunter2",  # plain words no redaction can tell from data
        "publish.url": "s3://reports/opensesamepassword/{run_id}/",
    }
    before = set(root.rglob("config.json"))
    result = cli("train", *[arg for key, value in secrets.items() for arg in ("--set", f"{key}={value}")])
    assert result.exit_code == 0, result.output
    (logged,) = set(root.rglob("config.json")) - before
    text = logged.read_text()
    for secret in ("Pgw4ssw0rdSecret", "Zq8TokenPathSeg77", "DvcPassw0rd55", "hunter2", "opensesamepassword"):
        assert secret not in text
    logged_config = json.loads(text)  # how the data was read and the model trained, nothing of where things go
    assert set(logged_config) == {"data", "columns", "thresholds", "drift", "model", "retrain"}
    assert logged_config["model"]["name"] == "bank-churn" and "tracking_uri" not in logged_config["model"]


def test_changes_of_the_registry_take_turns(trained):
    """Two retrains at once both promoted, each over the champion it had read, the worse one last.
    Every change of the aliases (train, retrain, ab promote, the pipeline's stage 5) now holds the
    model registry's lock from the champion read to the aliases moved: a second one waits."""
    import subprocess
    import sys

    from churnops.pipeline.lock import workspace_lock

    root, cli, _ = trained
    store = store_of(load_config())
    assert cli("generate", "--scenario", "concept").exit_code == 0
    before = registry.aliases(store, "bank-churn")
    with workspace_lock(load_config().model_lock_path, purpose="another retrain"):
        waiting = subprocess.Popen(
            [sys.executable, "-m", "churnops", "retrain"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        said = waiting.stderr.readline()  # it says it waits before it reads anything
        assert "the model registry is busy" in said and "another retrain" in said, said
        assert registry.aliases(store, "bank-churn") == before
    out, err = waiting.communicate(timeout=900)
    assert waiting.returncode == 0, err
    assert f"champion v{before['champion']}" in out


def test_blank_lines_are_left_out_of_the_models_check_too(trained, tmp_path):
    """3,000 blank lines at the end of a batch were left out of the drift and quality numbers but
    scored by the model: its prediction drift and estimated ROC-AUC moved, and raised a finding."""
    root, cli, _ = trained
    assert cli("generate").exit_code == 0
    batch = root / "data" / "production" / "bank_churn_prod.csv"
    model = {}
    for name, blanks in (("plain.csv", 0), ("blank.csv", 3000)):
        text = batch.read_text()
        width = text.splitlines()[0].count(",")
        (tmp_path / name).write_text(text + ("," * width + "\n") * blanks)
        result = cli("monitor", "-p", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        model[name] = metrics(root)["model"]
    plain, blank = model["plain.csv"], model["blank.csv"]
    assert blank["prediction_drift"]["statistic"] == plain["prediction_drift"]["statistic"]
    assert blank["estimated"] == plain["estimated"] and blank["realized"] == plain["realized"]
    assert blank["realized"]["rows"] == 10_000
