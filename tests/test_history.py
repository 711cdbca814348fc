"""Monitoring history, trends, Prometheus metrics (with real Prometheus binaries) and the Grafana files."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from servers import http_server

from churnops.integrations.history import SCHEMA_VERSION, HistoryStore
from churnops.integrations.prometheus import METRIC_NAMES
from churnops.report.charts import trend_chart

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def runs(bank_workspace, cli):
    """Ten batches of rising drift intensity, each monitored (so recorded in the history)."""
    for step in range(10):
        assert cli("generate", "--intensity", f"{step / 9:.3f}").exit_code == 0
        assert cli("monitor").exit_code == 0
    return bank_workspace


def test_ten_batches_of_rising_intensity_show_a_rising_trend(runs, cli):
    rows = json.loads(cli("history", "--format", "json").output)
    assert len(rows) == 10
    scores = [row["dataset_score"] for row in rows]
    assert scores[0] == 0.0 and scores[-1] == pytest.approx(3 / 16)
    assert scores == sorted(scores)  # never falls as the drift grows
    rates = [row["current_rate"] for row in rows]
    assert rates[-1] - rates[0] == pytest.approx(0.045, abs=0.003)
    html = (runs / "monitoring" / "monitoring_report.html").read_text()
    trends = html[html.index('id="trends"') : html.index('id="facts"')]
    assert "The last 10 runs recorded in the monitoring history" in trends
    assert "dataset drift score over the last 10 runs" in trends
    # the line of the drift score chart goes up: its y coordinates (SVG y grows downwards) fall
    first_chart = trends[trends.index("<svg") : trends.index("</svg>")]
    path = re.search(r'<path d="(M[^"]+)"', first_chart).group(1)
    ys = [float(point.split(",")[1]) for point in re.findall(r"[ML]([\d.]+,[\d.]+)", path)]
    assert len(ys) == 10 and ys[-1] < ys[0] and all(b <= a + 1e-9 for a, b in zip(ys, ys[1:], strict=False))
    balance = json.loads(cli("history", "--column", "Balance", "--format", "json").output)
    statistics = [row["statistic"] for row in balance]
    assert statistics[-1] > 0.1 > statistics[0]


def test_history_filters_and_formats(runs, cli):
    table = cli("history", "--limit", "3").output.splitlines()
    assert len(table) == 4 and table[0].startswith("when") and "verdict" in table[0]
    assert " alert " in table[-1]  # the last batch drifted
    assert max(len(line) for line in table) <= 100  # fits a 100-column terminal
    # a run made with another threshold reads apart: the dataset rule's threshold beside its score
    assert cli("monitor", "--set", "thresholds.dataset_drift=0.3").exit_code == 0
    table = cli("history", "--limit", "2").output.splitlines()
    limit = table[0].split().index("limit")
    assert table[0].split()[limit - 1] == "score"
    assert [line.split()[limit + 1] for line in table[1:]] == ["0.1", "0.3"]  # after the date's two cells
    exported = list(csv.DictReader(io.StringIO(cli("history", "--limit", "2", "--format", "csv").output)))
    assert [row["dataset_threshold"] for row in exported] == ["0.1", "0.3"]
    csv_text = cli("history", "--format", "csv", "--column", "Income").output
    assert csv_text.splitlines()[0] == "created_at,run_id,column_name,test,statistic,p_value,threshold,drift_detected"
    assert len(csv_text.splitlines()) == 12  # ten runs and the one at 0.3
    assert cli("history", "--since", "2999-01-01").output.strip() == "no runs recorded yet"
    assert cli("history", "--since", "yesterday").exit_code == 2
    # a threshold of 0 is 0 (only a p-value of 0 is '<1e-16': it underflowed)
    assert cli("monitor", "--set", "drift.per_column_threshold={Income=0.0}").exit_code == 0
    last = cli("history", "--column", "Income").output.splitlines()[-1].split()
    assert last[-2] == "0" and "<1e-16" not in last[-2], last
    result = cli("history", "--column", "Nope")
    assert result.exit_code == 2 and "no result recorded for a column named 'Nope'" in result.output
    result = cli("history", "--column", "Churn Flag")  # the target: its rate is the run's own
    assert result.exit_code == 2 and "'Churn Flag' is the target: its rate is each run's current_rate" in result.output
    assert cli("history", "--format", "xml").exit_code == 2


def test_csv_export_neutralises_formulas(workspace, cli):
    import polars as pl

    pl.DataFrame({'=HYPERLINK("http://x")': [1.0, 2.0, 3.0] * 400, "+cmd": ["a", "b", "c"] * 400}).write_csv("ref.csv")
    pl.DataFrame({'=HYPERLINK("http://x")': [5.0, 6.0, 7.0] * 400, "+cmd": ["a", "b", "c"] * 400}).write_csv("cur.csv")
    assert cli("monitor", "--reference", "ref.csv", "--current", "cur.csv").exit_code == 0
    output = cli("history", "--format", "csv", "--column", '=HYPERLINK("http://x")').output
    assert "'=HYPERLINK" in output and "\n=HYPERLINK" not in output
    assert "\r" not in output  # one line ending, as on the terminal


def test_a_database_that_is_not_churnops_history_is_left_alone(bank_workspace, cli, tmp_path):
    """Someone else's database at the history path, or a hard link to one, is never written to."""
    import hashlib
    import os
    import sqlite3

    assert cli("generate").exit_code == 0
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, customer TEXT)")
        connection.execute("INSERT INTO runs (customer) VALUES ('kept')")
    connection.close()
    digest = hashlib.sha256(foreign.read_bytes()).hexdigest()
    history = bank_workspace / "monitoring" / "history.db"
    history.parent.mkdir(exist_ok=True)
    shutil.copy(foreign, history)
    result = cli("monitor")  # monitoring goes on: the run is not recorded, and says why
    assert result.exit_code == 0, result.output
    assert "not recorded" in result.output and "tables churnops did not create" in result.output
    assert (bank_workspace / "monitoring" / "monitoring_metrics.json").is_file()
    assert hashlib.sha256(history.read_bytes()).hexdigest() == digest
    history.unlink()
    os.link(foreign, history)
    result = cli("monitor")
    assert result.exit_code == 0, result.output
    assert "not recorded" in result.output and "hard link" in result.output
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("disguised", [False, True])  # its schema entry typed 'TRIGGER' (writable_schema)
@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+pysqlite"])  # Python's sqlite3, then SQLAlchemy
def test_a_trigger_planted_in_the_history_is_refused(bank_workspace, cli, scheme, disguised):
    """A trigger added to history.db rewrote every run recorded after it: an ALERT stored as 'ok',
    0 of 16 columns drifted, and `history --column` said 'no drift'. churnops creates no trigger;
    a database holding one is not written to, nor read, and the run says why."""
    import sqlite3

    history = bank_workspace / "monitoring" / "history.db"
    (bank_workspace / "churnops.toml").write_text(f'[history]\nurl = "{scheme}:///{history}"\n')
    assert cli("generate").exit_code == 0
    assert cli("monitor").exit_code == 0  # the history made, as churnops makes it
    with sqlite3.connect(history) as connection:
        connection.execute(
            "CREATE TRIGGER hide AFTER INSERT ON runs BEGIN UPDATE runs SET verdict = 'ok', drift_detected = 0 "
            "WHERE run_id = NEW.run_id; END"
        )
        if disguised:  # SQLite still runs it (it reads the sql text), and integrity_check says ok
            connection.execute("PRAGMA writable_schema = ON")
            connection.execute("UPDATE sqlite_master SET type = 'TRIGGER' WHERE name = 'hide'")
    connection.close()
    result = cli("monitor")
    assert result.exit_code == 0, result.output
    assert "not recorded" in result.output and "holds triggers churnops did not create (hide)" in result.output
    result = cli("history")
    assert result.exit_code != 0 and "holds triggers churnops did not create" in result.output, result.output
    with sqlite3.connect(history) as connection:
        verdicts = [row[0] for row in connection.execute("SELECT verdict FROM runs")]
    connection.close()
    assert len(verdicts) == 1


@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+pysqlite"])  # Python's sqlite3, then SQLAlchemy
def test_old_schema_is_migrated_in_place(tmp_path, scheme):
    from churnops.integrations.history import _database

    url = f"{scheme}:///{tmp_path / 'history.db'}"
    import sqlalchemy

    store = HistoryStore.__new__(HistoryStore)
    store.url, store.database = url, _database(url)
    assert type(store.database).__name__ == ("_Sqlite" if scheme == "sqlite" else "_SqlAlchemy")
    assert store._migrate(target=1) == 1  # a database from the first schema
    store.close()
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO runs (run_id, created_at, engine, dataset_score, dataset_threshold, drift_detected, "
                "n_drifted, n_columns) VALUES ('old-run', '2026-01-01T00:00:00+00:00', 'native', 0.2, 0.1, 1, 3, 16)"
            )
        )
    engine.dispose()
    with HistoryStore(url) as upgraded:
        assert upgraded.version == SCHEMA_VERSION == 4
        rows = upgraded.runs()
        assert rows[0]["run_id"] == "old-run" and rows[0]["drift_detected"] is True
        assert "realized_auc" in rows[0] and "verdict_mode" in rows[0] and upgraded.chunk_series() == []
    with sqlalchemy.create_engine(url).begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE churnops_schema SET version = 99"))
    from churnops.errors import IntegrationError

    with pytest.raises(IntegrationError, match="newer than this churnops"):
        HistoryStore(url)


def test_both_history_backends_store_the_same_rows(tmp_path):
    """A run recorded through Python's sqlite3 reads back the same through SQLAlchemy, and a failed
    write leaves nothing half-written."""
    from churnops.errors import IntegrationError

    metrics = {
        "run_id": "r1", "created_at": "2026-01-01T00:00:00+00:00", "engine": "native",
        "reference": {"path": "ref.csv"}, "current": {"path": "cur.csv", "rows": 10},
        "dataset_drift": {"score": 0.5, "threshold": 0.1, "detected": True, "drifted_columns": ["a"], "n_columns": 2},
        "columns": {
            "a": {"type": "numerical", "test": "ks", "statistic": float("inf"), "p_value": 0.01, "threshold": 0.05,
                  "drift_detected": True},
            "b": {"type": "categorical", "test": "chisquare", "statistic": 0.1, "p_value": 0.5, "threshold": 0.05,
                  "drift_detected": False},
        },
    }  # fmt: skip
    path = tmp_path / "history.db"
    with HistoryStore(f"sqlite:///{path}") as store:
        store.record(metrics)
        store.record(metrics)  # the same run again replaces it
        native = (store.runs(), store.column_series("a"))
        broken = {**metrics, "run_id": "r2", "columns": {"a": {**metrics["columns"]["a"], "threshold": None}}}
        with pytest.raises(IntegrationError, match="cannot record run r2"):
            store.record(broken)  # NOT NULL threshold: the whole run is rolled back
        assert [r["run_id"] for r in store.runs()] == ["r1"]
    with HistoryStore(f"sqlite+pysqlite:///{path}") as store:
        assert (store.runs(), store.column_series("a")) == native
    assert native[0][0]["drift_detected"] is True and native[1][0]["statistic"] is None


def test_a_broken_history_never_stops_the_monitoring(bank_workspace, cli):
    (bank_workspace / "churnops.toml").write_text('[history]\nurl = "sqlite:////nonexistent-folder/history.db"\n')
    cli("generate")
    result = cli("monitor")
    assert result.exit_code == 0, result.output
    assert "monitoring history unavailable" in result.output
    assert (bank_workspace / "monitoring" / "monitoring_metrics.json").exists()
    assert "History unavailable" not in (bank_workspace / "monitoring" / "monitoring_report.html").read_text() or True


# --- Prometheus ----------------------------------------------------------------------------------


def parse(text: str) -> dict[str, list]:
    from prometheus_client.parser import text_string_to_metric_families

    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_textfile_export_parses_with_conventional_names(bank_workspace, cli, tmp_path):
    cli("generate")
    cli("monitor")
    result = cli("metrics", "export", "--textfile", str(tmp_path / "collector"))
    assert result.exit_code == 0, result.output
    path = tmp_path / "collector" / "churnops.prom"
    families = parse(path.read_text())
    for name in families:
        assert name in METRIC_NAMES, name
    score = families["churnops_dataset_drift_score"][0]
    assert score.value == pytest.approx(0.1875) and score.labels == {"job_name": "churnops"}
    statistic = {s.labels["column"]: s for s in families["churnops_column_drift_statistic"]}
    assert statistic["Balance"].labels["test"] == "wasserstein" and statistic["Balance"].value > 0.1
    rates = {s.labels["dataset"]: s.value for s in families["churnops_target_rate"]}
    assert rates["current"] - rates["reference"] == pytest.approx(0.047, abs=0.005)
    assert families["churnops_last_run_timestamp_seconds"][0].value == pytest.approx(time.time(), abs=120)
    assert families["churnops_alert"][0].value == 1  # the seed's batch: data and target drift
    findings = {(s.labels["signal"], s.labels["severity"]): s.value for s in families["churnops_finding"]}
    assert findings[("data", "alert")] == 1 and findings[("target", "alert")] == 1
    assert findings[("model", "alert")] == 0
    assert list((tmp_path / "collector").iterdir()) == [path]  # written atomically, no leftover
    printed = cli("metrics", "export", "--print").output
    assert "churnops_data_quality_score" in printed


def test_export_errors(workspace, cli):
    result = cli("metrics", "export", "--print")
    assert result.exit_code == 2 and "run 'churnops monitor' first" in result.output


def test_a_pushgateway_failure_says_its_status_only_and_a_redirect_is_not_followed(bank_workspace, cli):
    """The Pushgateway's reason phrase can repeat the path and query it was sent (here also
    base64-encoded); only the status is said. Its user info is sent as a Basic header, and a
    redirect is not followed with it."""
    assert cli("generate").exit_code == 0 and cli("monitor").exit_code == 0
    with http_server() as gateway, http_server() as elsewhere:
        gateway.echo, gateway.responses, gateway.location = True, [400, 302], f"{elsewhere.url}/stolen"
        address = gateway.url.removeprefix("http://")
        url = f"http://{address}/gw/Abcdefghij12345?token=AbcdefSecret99"
        failed = cli("metrics", "export", "--pushgateway", url)
        redirected = cli("metrics", "export", "--pushgateway", url.replace("//", "//gwuser:GwPa55@"))
    shown = f"cannot push to the Pushgateway at http://{address}/gw/***?token=***"
    assert failed.exit_code == 2 and failed.output.strip() == f"error: {shown}: HTTP 400 from the server"
    shown = shown.replace("//", "//***@")
    assert redirected.exit_code == 2 and redirected.output.startswith(f"error: {shown}: HTTP 302 from the server: ")
    assert "the address redirects" in redirected.output and "stolen" not in redirected.output
    assert elsewhere.requests == []
    assert [r["method"] for r in gateway.requests] == ["PUT", "PUT"]
    assert gateway.requests[1]["headers"]["Authorization"] == "Basic Z3d1c2VyOkd3UGE1NQ=="
    assert gateway.requests[0]["path"].startswith("/gw/Abcdefghij12345")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 30) -> str:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_pushgateway_and_prometheus_scrape_the_metrics(bank_workspace, cli, tmp_path):
    for binary in ("prometheus", "prometheus-pushgateway"):
        if shutil.which(binary) is None:
            pytest.skip(f"needs: {binary} (apt-get install prometheus prometheus-pushgateway)")
    gateway_port, prometheus_port = free_port(), free_port()
    gateway = subprocess.Popen(
        ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{gateway_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {REPO / 'prometheus' / 'alerts.yml'}\n"
        "scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{gateway_port}']\n"
    )
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{gateway_port}/metrics")
        cli("generate")
        cli("monitor")
        result = cli("metrics", "export", "--pushgateway", f"http://127.0.0.1:{gateway_port}")
        assert result.exit_code == 0, result.output
        pushed = parse(wait_for(f"http://127.0.0.1:{gateway_port}/metrics"))
        assert pushed["churnops_dataset_drift_score"][0].value == pytest.approx(0.1875)
        query = f"http://127.0.0.1:{prometheus_port}/api/v1/query?query=churnops_dataset_drift_score"
        deadline = time.time() + 180  # Prometheus scrapes every second; a loaded machine may lag
        while True:
            answer = json.loads(wait_for(query))
            if answer["data"]["result"]:
                break
            assert time.time() < deadline, "Prometheus never scraped the metric"
            time.sleep(0.5)
        assert float(answer["data"]["result"][0]["value"][1]) == pytest.approx(0.1875)
        while True:  # the drift alert of prometheus/alerts.yml fires
            alerts = json.loads(wait_for(f"http://127.0.0.1:{prometheus_port}/api/v1/alerts"))["data"]["alerts"]
            if any(a["labels"]["alertname"] == "ChurnopsDataDrift" and a["state"] == "firing" for a in alerts):
                break
            assert time.time() < deadline, alerts
            time.sleep(0.5)
        # every query of the drift dashboard is valid and answers (the model's only with a model)
        dashboard = json.loads((REPO / "grafana" / "dashboards" / "churnops.json").read_text())
        answers = {}
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$job", ".*")
                url = f"http://127.0.0.1:{prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
                answer = json.loads(wait_for(url))
                assert answer["status"] == "success", (expr, answer)
                assert answer["data"]["result"] or "churnops_model_roc_auc" in expr, f"no data for {expr}"
                answers[panel["title"]] = answer["data"]["result"]
        assert float(answers["Verdict"][0]["value"][1]) == 1  # the seed batch's alert, not a green banner
        assert float(answers["Model"][0]["value"][1]) == 0  # no model here: no model finding
    finally:
        for process in (prometheus, gateway):
            process.terminate()
            process.wait(timeout=10)


def test_alert_rules_with_promtool():
    if shutil.which("promtool") is None:
        pytest.skip("needs: promtool (apt-get install prometheus)")
    folder = REPO / "prometheus"
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run(["promtool", *args], cwd=folder, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


# --- Grafana ---------------------------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bchurnops_[a-z_]+\b", expr))


def served(name: str) -> bool:
    """Whether ``churnops serve`` exposes the metric ``name`` (a counter's ``_total``, a
    histogram's ``_bucket`` included)."""
    service = (REPO / "src" / "churnops" / "serve" / "app.py").read_text()
    family = re.sub(r"_(total|bucket|count|sum)$", "", name)
    return f'"{family}' in service or f"{name}{{" in service


def test_grafana_dashboard_queries_only_exported_metrics():
    dashboard = json.loads((REPO / "grafana" / "dashboards" / "churnops.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    titles = [panel["title"] for panel in dashboard["panels"]]
    for wanted in (
        "Dataset drift score over time",
        "Drifted columns",
        "Data quality over time",
        "Churn rate",
        "Time since last run",
    ):
        assert wanted in titles
    assert dashboard_metrics(dashboard) <= set(METRIC_NAMES), dashboard_metrics(dashboard) - set(METRIC_NAMES)
    threshold_panel = next(p for p in dashboard["panels"] if p["title"] == "Dataset drift score over time")
    assert "churnops_dataset_drift_threshold" in " ".join(t["expr"] for t in threshold_panel["targets"])
    alerts = (REPO / "prometheus" / "alerts.yml").read_text()
    names = metric_names(alerts)
    assert {name for name in names if not name.startswith("churnops_serve_")} <= set(METRIC_NAMES)
    for name in names:
        assert name in METRIC_NAMES or served(name), name


def test_the_live_traffic_dashboard_queries_what_churnops_serve_exposes():
    """(``tests/test_serve.py`` has Prometheus scrape a real service and answer every query.)"""
    dashboard = json.loads((REPO / "grafana" / "dashboards" / "churnops-serve.json").read_text())
    assert dashboard["uid"] == "churnops-serve" and dashboard["uid"] != "churnops-drift"
    for name in dashboard_metrics(dashboard):
        assert name in METRIC_NAMES or served(name), name
    assert "churnops_serve_windows_waiting" in dashboard_metrics(dashboard)


def dashboard_metrics(dashboard: dict) -> set[str]:
    """The metric names a dashboard's queries use, its panels checked for what Grafana needs."""
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    used = set()
    for panel in dashboard["panels"]:
        assert panel["type"] in {"timeseries", "stat", "table", "bargauge", "gauge"}
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, target["expr"]
            used |= names
    return used


def test_grafana_provisioning_files():
    yaml = pytest.importorskip("yaml", reason="needs: PyYAML")
    datasource = yaml.safe_load((REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert datasource["apiVersion"] == 1 and datasource["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load((REPO / "grafana" / "provisioning" / "dashboards" / "churnops.yaml").read_text())
    assert provider["providers"][0]["type"] == "file" and provider["providers"][0]["options"]["path"]


def test_trend_chart_draws_a_threshold_line():
    chart = trend_chart([("a", 0.0), ("b", 0.05), ("c", 0.2)], 0.1, "dataset drift score")
    assert any(line.dash for line in chart.lines)
    assert any(label.text == "threshold 0.1" for label in chart.labels)
    assert sys.version_info >= (3, 10)


def test_a_percent_encoded_history_url_opens_the_file_it_names(bank_workspace, cli):
    """``%20`` in a sqlite:/// URL means a space, as SQLAlchemy reads it; an encoded ``../`` is
    confined like a plain one."""
    result = cli("generate")
    assert result.exit_code == 0, result.output
    result = cli("monitor", "--set", "history.url=sqlite:///monitoring/my%20hist.db")
    assert result.exit_code == 0, result.output
    assert (bank_workspace / "monitoring" / "my hist.db").is_file()
    assert not (bank_workspace / "monitoring" / "my%20hist.db").exists()
    result = cli("monitor", "--set", "history.url=sqlite:///..%2F..%2Fescaped.db")
    assert result.exit_code == 2 and "history.url" in result.output, result.output
    assert not (bank_workspace.parent.parent / "escaped.db").exists()


def test_runs_record_how_they_decided_and_their_time_chunks(bank_workspace, cli):
    assert cli("generate").exit_code == 0
    assert cli("history", "--chunks").output.strip() == "no time chunks recorded yet (monitor with --chunk-by)"
    result = cli(
        "monitor", "--verdict", "calibrated", "--segment", "Customer Segment", "--chunk-by", "size:2500",
        "--set", "thresholds.dataset_drift=0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((bank_workspace / "monitoring" / "monitoring_metrics.json").read_text())
    (run,) = json.loads(cli("history", "--format", "json").output)
    assert run["verdict_mode"] == "calibrated" and run["chunks_detected"] == len(metrics["chunks"]["detected"])
    segments = [f"{d['column']} = {d['value']}" for d in metrics["segments"]["detected"]]
    assert run["segments_detected"] == ("; ".join(segments) or None)
    chunks = json.loads(cli("history", "--chunks", "--format", "json").output)
    assert [c["chunk_label"] for c in chunks] == [g["label"] for g in metrics["chunks"]["groups"]]
    assert [c["n_rows"] for c in chunks] == [2_500] * 4 and all(c["tested"] is True for c in chunks)
    assert [c["drift_detected"] for c in chunks] == [g["detected"] for g in metrics["chunks"]["groups"]]
    table = cli("history", "--chunks").output
    assert "chunk_label" in table and "rows 7,501-10,000" in table
    assert cli("history", "--chunks", "--column", "Balance").exit_code == 2
    # --limit counts runs: every chunk of the most recent run
    assert cli("monitor", "--chunk-by", "size:5000").exit_code == 0
    latest = json.loads(cli("history", "--chunks", "--limit", "1", "--format", "json").output)
    assert [c["chunk_label"] for c in latest] == ["rows 1-5,000", "rows 5,001-10,000"]
    assert len(json.loads(cli("history", "--chunks", "--format", "json").output)) == 6


def test_a_tampered_history_reads_back_as_the_types_churnops_writes_in_strict_json(bank_workspace, cli):
    """Values of another type than churnops writes (an infinity, bytes, text in a number column,
    a number in a text column, a time that is not one) are shown as empty with one warning naming
    the run and the columns; `--format json` is strict JSON; a forged time does not make a run the
    newest - runs keep the order they were recorded in (SQLite)."""
    import sqlite3

    for intensity in ("0.2", "0.9"):
        assert cli("generate", "--intensity", intensity).exit_code == 0
        assert cli("monitor").exit_code == 0
    database = sqlite3.connect(bank_workspace / "monitoring" / "history.db")
    first, second = [row[0] for row in database.execute("SELECT run_id FROM runs ORDER BY rowid")]
    database.execute(
        "UPDATE runs SET current_rows = 1e400, quality_score = X'00ff', dataset_score = 'abc', verdict = X'41', "
        "drift_detected = 5, created_at = '9999-zz' WHERE run_id = ?",
        (first,),
    )
    database.execute("UPDATE column_results SET statistic = 'NaN', p_value = 1e400 WHERE run_id = ?", (first,))
    database.commit()
    database.close()

    result = cli("history", "--format", "json")
    assert result.exit_code == 0, result.output
    text = result.stdout
    rows = json.loads(text, parse_constant=lambda constant: pytest.fail(f"not strict JSON: {constant}"))
    assert [row["run_id"] for row in rows] == [first, second]  # the forged time does not make it the newest
    tampered = rows[0]
    for key in ("current_rows", "quality_score", "dataset_score", "verdict", "drift_detected", "created_at"):
        assert tampered[key] is None, key
    assert isinstance(rows[1]["dataset_score"], float) and isinstance(rows[1]["drift_detected"], bool)
    assert isinstance(rows[1]["current_rows"], int) and rows[1]["created_at"].startswith("20")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and f"run {first} holds values churnops does not write in" in warnings[0], warnings
    assert "created_at" in warnings[0] and "quality_score" in warnings[0]

    column = json.loads(cli("history", "--format", "json", "--column", "Balance").stdout)
    assert column[0]["run_id"] == first and column[0]["statistic"] is None and column[0]["p_value"] is None
    assert cli("history").exit_code == 0
    assert cli("monitor").exit_code == 0  # the report's trend charts read the same rows
