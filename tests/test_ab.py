"""Champion and challenger on live traffic: each arm's numbers equal the library's metrics, a
clearly better challenger is promoted (by ``churnops ab promote`` and unattended by the service)
and a model no better than the champion is not; the aliases only move on evidence, and the
registry says why. Real processes: ``churnops serve`` on 127.0.0.1, MLflow's sqlite registry."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import churnops
from churnops.serve import ab

pytest.importorskip("uvicorn", reason="needs: uvicorn (pip install 'churnops[serve]')")
pytest.importorskip("starlette", reason="needs: starlette (pip install 'churnops[serve]')")

from service_process import TOKEN, Service  # noqa: E402 - after the extra is known

HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}


def _rows(arm: str, version: str, scores, labels) -> list[tuple]:
    return [(arm, version, float(s), None if y is None else int(y)) for s, y in zip(scores, labels, strict=True)]


def test_each_arms_numbers_are_the_librarys_and_only_its_current_version_counts():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 3_000)
    good = np.clip(0.5 * labels + rng.normal(0.25, 0.2, labels.size), 0.001, 0.999)
    rows = _rows("champion", "7", good, labels)
    rows += _rows("champion", "6", rng.random(500), rng.integers(0, 2, 500))  # an earlier champion's events
    rows += _rows("champion", "7", rng.random(400), [None] * 400)  # scored, not labelled yet
    document = ab.ab_document(rows, [ab.Arm("champion", "champion", "7")], "m", 0.05, 100)
    arm = document["arms"]["champion"]
    assert arm["scored"] == 3_400 and arm["labelled"] == 3_000 and arm["positives"] == int(labels.sum())
    assert arm["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, good), rel=1e-12)
    assert arm["brier"] == pytest.approx(metrics.brier_score_loss(labels, good), rel=1e-12)
    assert arm["log_loss"] == pytest.approx(metrics.log_loss(labels, good), rel=1e-12)
    assert sum(arm["score"]["histogram"]) == 3_400
    assert document["decision"]["promote"] is False and "no challenger" in document["decision"]["reason"]


def test_promotion_needs_a_significantly_higher_roc_auc_and_enough_labels():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, 4_000)
    strong = 0.6 * labels + rng.normal(0.2, 0.2, labels.size)
    weak = 0.15 * labels + rng.normal(0.4, 0.2, labels.size)
    arms = [ab.Arm("champion", "champion", "1"), ab.Arm("challenger", "challenger", "2")]

    def decision(champion_scores, challenger_scores, n=2_000, min_labels=1_000):
        rows = _rows("champion", "1", champion_scores[:n], labels[:n])
        rows += _rows("challenger", "2", challenger_scores[n:], labels[n:])
        return ab.ab_document(rows, arms, "m", 0.05, min_labels)["decision"]

    better = decision(weak, strong)
    assert better["promote"] and better["p_value"] < 1e-6 and better["difference"] > 0.2
    assert not decision(strong, weak)["promote"]  # worse
    # the same scoring rule in both arms: not better (different customers, one draw)
    same = decision(strong, strong)
    assert not same["promote"] and same["p_value"] > 0.05 and "not significantly better" in same["reason"]
    few = decision(weak, strong, min_labels=5_000)
    assert not few["promote"] and "not enough labels" in few["reason"] and few["p_value"] is None
    one_outcome = ab.ab_document(
        _rows("champion", "1", weak[:300], [0] * 300) + _rows("challenger", "2", strong[:300], labels[:300]),
        arms, "m", 0.05, 100,
    )["decision"]  # fmt: skip
    assert not one_outcome["promote"] and "not enough of each outcome" in one_outcome["reason"]
    # rare outcomes: DeLong's normal approximation is not trusted below serve.ab.min_each_outcome of each
    rare = np.zeros(4_000, dtype=int)
    rare[::100] = 1  # 20 churned per arm
    rows = _rows("champion", "1", weak[:2_000], rare[:2_000]) + _rows("challenger", "2", strong[2_000:], rare[2_000:])
    few_churned = ab.ab_document(rows, arms, "m", 0.05, 1_000, 50)["decision"]
    assert not few_churned["promote"] and "20 churned" in few_churned["reason"]
    assert "50 of each" in few_churned["reason"]


def test_a_customer_scored_many_times_counts_once():
    """Two arms scoring with the same rule, each on 100 customers seen 20 times: counted per event,
    DeLong took the 2,000 repeated scorings for independent customers and promoted a model no
    better than the champion. Each customer counts once, on their latest labelled event."""
    rng = np.random.default_rng(21)
    arms = [ab.Arm("champion", "champion", "1"), ab.Arm("challenger", "challenger", "2")]
    promoted = 0
    for draw in range(20):
        rows = []
        for arm, version, first in (("champion", "1", 0), ("challenger", "2", 10_000)):
            outcomes = rng.integers(0, 2, 100)
            scores = np.clip(0.3 * outcomes + rng.normal(0.35, 0.2, 100), 0.001, 0.999)
            for _visit in range(20):
                rows += [
                    (arm, version, float(scores[i] + rng.normal(0, 0.01)), int(outcomes[i]), first + i)
                    for i in range(100)
                ]
        rows.reverse()  # newest first, as the event log gives them
        document = ab.ab_document(rows, arms, "m", 0.05, 50, 10, keyed=True)
        assert document["unit"] == "customer"
        for arm in document["arms"].values():
            assert arm["scored"] == 2_000 and arm["customers"] == 100 and arm["labelled"] == 100
        assert "labelled customers" in document["decision"]["reason"]
        promoted += document["decision"]["promote"]
        if draw == 0:  # counted per event, the same rows looked like 2,000 customers an arm
            per_event = ab.ab_document([row[:4] for row in rows], arms, "m", 0.05, 50, 10)
            assert per_event["arms"]["champion"]["labelled"] == 2_000
    assert promoted <= 3  # at level 0.05, 20 draws of two equal models


def test_events_without_a_customer_are_left_out_and_one_customer_is_one_key_whatever_its_type():
    from churnops.serve.scoring import arm_of, customer_key

    for share in (0.2, 0.5, 0.9):
        for n in range(15601001, 15601301):
            assert arm_of(n, share) == arm_of(float(n), share) == arm_of(str(n), share)
    assert customer_key(float("nan")) is None and customer_key(1.5) == "1.5"
    assert customer_key(True) is None and arm_of(False, 1.0) == "champion"  # true/false name no customer
    rows = [("champion", "1", 0.2, 1, None), ("champion", "1", 0.7, 0, "C-1"), ("champion", "1", 0.9, None, "C-1")]
    arm = ab.ab_document(rows, [ab.Arm("champion", "champion", "1")], "m", 0.05, 20, keyed=True)["arms"]["champion"]
    assert (arm["scored"], arm["customers"], arm["without_customer"], arm["labelled"]) == (3, 1, 1, 1)
    assert arm["brier"] == pytest.approx(0.7**2)  # C-1's labelled event, not their newest unlabelled one


@pytest.mark.parametrize("alias", ["champion", "previous-champion", " Champion", ""])
def test_the_challenger_alias_cannot_be_one_churnops_moves(tmp_path, alias):
    from churnops.config import load_config
    from churnops.errors import ConfigError

    with pytest.raises(ConfigError, match="serve.ab.challenger"):
        load_config(tmp_path, overrides={"serve.ab.challenger": alias})


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> Path:
    """A workspace whose registry holds a model trained on shuffled outcomes (v1, no better than
    chance) and one trained on the real outcomes (v2)."""
    pytest.importorskip("sklearn", reason="needs: scikit-learn (pip install 'churnops[mlflow]')")
    root = tmp_path_factory.mktemp("ab")
    subprocess.run([sys.executable, "-m", "churnops", "-q", "data", "init"], cwd=root, check=True, timeout=300)
    table = pl.read_csv(root / "data" / "churn.csv", infer_schema_length=0)
    shuffled = np.random.default_rng(0).permutation(table["Churn Flag"].to_numpy())
    table.with_columns(pl.Series("Churn Flag", shuffled)).write_csv(root / "data" / "shuffled.csv")
    # a model no better than chance is made champion only when model.min_auc allows it
    for extra in (["--set", "paths.reference=data/shuffled.csv", "--set", "model.min_auc=0"], []):
        done = subprocess.run(
            [sys.executable, "-m", "churnops", "-q", "train", *extra], cwd=root, capture_output=True, text=True,
            timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return root


def _aliases(root: Path, **wanted: str) -> dict[str, str]:
    """Point the aliases as ``wanted`` (None removes one); the registry's aliases afterwards."""
    from churnops.config import load_config
    from churnops.integrations import mlflow_registry as registry
    from churnops.pipeline.scoring import store_of

    config = load_config(root)
    store = store_of(config)
    for alias, version in wanted.items():
        alias = alias.replace("_", "-")
        if version is None:
            if alias in registry.aliases(store, config.model.name):
                registry.delete_alias(store, config.model.name, alias)
        else:
            registry.set_alias(store, config.model.name, alias, version)
    return registry.aliases(store, config.model.name)


def _churnops(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "churnops", *args], cwd=root, capture_output=True, text=True, timeout=600,
        env={**os.environ, "CHURNOPS_API_TOKEN": TOKEN},
    )  # fmt: skip


def _score_and_label(service: Service, start: int, prefix: str, n: int = 1_000) -> None:
    rows = churnops.generate(n, start=start)
    events = [{"event_id": f"{prefix}-{i}", **row} for i, row in enumerate(rows.drop("Churn Flag").to_dicts())]
    status, body, _ = service.request("POST", "/v1/predict", json.dumps(events).encode(), HEADERS)
    assert status == 200, body
    for window in json.loads(body)["closed_windows"]:  # its model check done before any label arrives
        service.window(window)
    outcomes = [{"event_id": f"{prefix}-{i}", "label": int(flag)} for i, flag in enumerate(rows["Churn Flag"])]
    assert service.request("POST", "/v1/labels", json.dumps(outcomes).encode(), HEADERS)[0] == 200


def _close_window(service: Service, window: int, start: int) -> None:
    """Fill the open window with plain events and wait until the service has evaluated it (and
    checked its models)."""
    rows = churnops.generate(1_000, start=start)
    events = [{"event_id": f"fill-{start}-{i}", **row} for i, row in enumerate(rows.to_dicts())]
    status, answer = service.post(events[: 1_000 - service_open_count(service)])
    assert status == 200 and window in answer["closed_windows"], answer
    service.window(window)


def service_open_count(service: Service) -> int:
    return json.loads(service.request("GET", "/v1/drift")[1])["open_window"]["events"]


def test_a_clearly_better_challenger_is_promoted_by_the_command_and_the_service_takes_it_up(two_models):
    root = two_models
    _aliases(root, champion="1", challenger="2", previous_champion=None)
    ab_settings = ["--set", "serve.ab.min_labels=100", "--set", "serve.event_log=monitoring/manual.db"]
    # auto_promote on too: a promotion made by hand meanwhile must be followed, not fought
    service = Service(root, "--set", "serve.ab.share=0.5", "--set", "serve.ab.auto_promote=true", *ab_settings)
    try:
        _score_and_label(service, 40_000, "m")
        shown = _churnops(root, "ab", "report", "--format", "json", *ab_settings)  # while the service runs
        assert shown.returncode == 0, shown.stderr
        document = json.loads(shown.stdout)
        champion, challenger = document["arms"]["champion"], document["arms"]["challenger"]
        assert champion["version"] == "1" and challenger["version"] == "2"
        assert champion["labelled"] + challenger["labelled"] == 1_000
        assert champion["roc_auc"] < 0.6 < 0.75 < challenger["roc_auc"]
        assert document["decision"]["promote"] and document["decision"]["p_value"] < 1e-6
        # the same numbers as the service shows
        live = json.loads(service.request("GET", "/v1/drift")[1])["model"]
        assert live["challenger"]["roc_auc"] == challenger["roc_auc"] and live["comparison"]["promote"]
        page = (root / "monitoring" / "ab" / "ab_report.html").read_text(encoding="utf-8")
        assert "The challenger is better" in page and "<script" not in page and 'href="report.css"' in page
        assert (root / "monitoring" / "ab" / "report.css").is_file()
        assert json.loads((root / "monitoring" / "ab" / "ab_report.json").read_text())["decision"]["promote"]

        dry = _churnops(root, "ab", "promote", "--dry-run", *ab_settings)
        assert dry.returncode == 0 and "would promote" in dry.stdout
        assert _aliases(root) == {"champion": "1", "challenger": "2"}
        done = _churnops(root, "ab", "promote", *ab_settings)
        assert done.returncode == 0 and "v2 promoted to champion" in done.stdout, done.stderr
        assert _aliases(root) == {"champion": "2", "previous-champion": "1"}
        from churnops.config import load_config
        from churnops.integrations import mlflow_registry as registry
        from churnops.pipeline.scoring import store_of

        tags = registry.version_tags(store_of(load_config(root)), "bank-churn", "2")
        assert "churnops ab promote" in tags["churnops.promotion"] and tags["churnops.previous_champion"] == "1"
        again = _churnops(root, "ab", "promote", *ab_settings)
        assert again.returncode == 0 and "nothing promoted: no challenger" in again.stdout

        # the running service scores with the new champion from its next closed window on
        _close_window(service, 1, 60_000)
        ready = json.loads(service.request("GET", "/readyz")[1])
        assert ready["model"] == "bank-churn v2"
        status, body, _ = service.request(
            "POST", "/v1/predict", json.dumps([{"event_id": "after", **churnops.generate(1).to_dicts()[0]}]).encode(),
            HEADERS,
        )  # fmt: skip
        assert status == 200 and json.loads(body)["predictions"][0]["version"] == "2"
        assert json.loads(body)["predictions"][0]["arm"] == "champion"
    finally:
        service.stop()


def test_the_service_promotes_unattended_only_on_evidence(two_models):
    root = two_models
    # a challenger no better than the champion (the same model): never promoted
    _aliases(root, champion="2", challenger="2", previous_champion=None)
    settings = ["--set", "serve.ab.share=0.5", "--set", "serve.ab.min_labels=100"]
    settings += ["--set", "serve.ab.auto_promote=true"]
    service = Service(root, *settings, "--set", "serve.event_log=monitoring/same.db")
    try:
        _score_and_label(service, 70_000, "s")  # window 0 closes with these events
        service.window(0)
        _close_window(service, 1, 80_000)
        assert _aliases(root) == {"champion": "2", "challenger": "2"}
    finally:
        service.stop()
    # a clearly better challenger: promoted after the first window that closes with its labels in
    _aliases(root, champion="1", challenger="2")
    service = Service(root, *settings, "--set", "serve.event_log=monitoring/auto.db")
    try:
        _score_and_label(service, 90_000, "a", n=900)
        assert _aliases(root) == {"champion": "1", "challenger": "2"}  # no window closed yet
        _close_window(service, 0, 100_000)
        assert _aliases(root) == {"champion": "2", "previous-champion": "1"}
        assert json.loads(service.request("GET", "/readyz")[1])["model"] == "bank-churn v2"
        model = json.loads(service.request("GET", "/v1/drift")[1])["model"]
        assert "challenger" not in model and model["version"] == "2"  # every customer on the new champion
    finally:
        service.stop()
    from churnops.config import load_config
    from churnops.integrations import mlflow_registry as registry
    from churnops.pipeline.scoring import store_of

    tags = registry.version_tags(store_of(load_config(root)), "bank-churn", "2")
    assert "serve.ab.auto_promote" in tags["churnops.promotion"]


def _promotable(root: Path) -> tuple[Any, dict]:
    """Champion v1 and challenger v2, and a measure that promotes v2: the configuration and it."""
    from churnops.config import load_config

    _aliases(root, champion="1", challenger="2", previous_champion=None)
    config = load_config(root)
    rows = _rows("champion", "1", [0.1, 0.9] * 60, [1, 0] * 60) + _rows("challenger", "2", [0.1, 0.9] * 60, [0, 1] * 60)
    document = ab.ab_document(rows, ab.current_arms(config), "bank-churn", 0.05, 20)
    assert document["decision"]["promote"]
    return config, document


def test_measured_numbers_never_move_aliases_that_moved_since(two_models):
    from churnops.errors import ConfigError

    root = two_models
    config, document = _promotable(root)
    _aliases(root, challenger="1")  # someone moved the challenger in between
    with pytest.raises(ConfigError, match="moved since"):
        ab.promote(config, document, "test")
    assert _aliases(root) == {"champion": "1", "challenger": "1"}


def test_bad_and_hostile_event_logs_are_refused_in_one_line(two_models, tmp_path):
    root = two_models
    _aliases(root, champion="1", challenger="2", previous_champion=None)
    missing = _churnops(root, "ab", "report", "--set", "serve.event_log=monitoring/none.db")
    assert missing.returncode == 2 and "no event log yet" in missing.stderr
    (root / "monitoring").mkdir(exist_ok=True)
    (root / "monitoring" / "link.db").symlink_to(root / "mlflow.db")
    linked = _churnops(root, "ab", "report", "--set", "serve.event_log=monitoring/link.db")
    assert linked.returncode == 2 and "symbolic link" in linked.stderr
    import sqlite3

    with sqlite3.connect(root / "monitoring" / "foreign.db") as db:
        db.execute("CREATE TABLE runs (id INTEGER)")
    foreign = _churnops(root, "ab", "report", "--set", "serve.event_log=monitoring/foreign.db")
    assert foreign.returncode == 2 and "not churnops' event log" in foreign.stderr
    (root / "monitoring" / "garbage.db").write_bytes(b"not a database at all" * 100)
    garbage = _churnops(root, "ab", "report", "--set", "serve.event_log=monitoring/garbage.db")
    assert garbage.returncode == 2 and "event log" in garbage.stderr
    wrong = _churnops(root, "ab", "report", "--format", "xml", "--set", "serve.event_log=monitoring/foreign.db")
    assert wrong.returncode == 2 and "--format" in wrong.stderr
    (root / "monitoring" / "folder.db").mkdir()
    folder = _churnops(root, "ab", "report", "--set", "serve.event_log=monitoring/folder.db")
    assert folder.returncode == 2 and "is not a file" in folder.stderr
    # a log whose records were tampered with: the damaged ones are left out, never an internal error
    from churnops.serve.eventlog import ARM, MODEL_VERSION, PROBABILITY, EventLog

    log = EventLog(root / "monitoring" / "tampered.db", 10)
    scored = [(f"t-{i}", {PROBABILITY: 0.5, ARM: "champion", MODEL_VERSION: "1"}) for i in range(3)]
    log.append(scored)
    log.close()
    with sqlite3.connect(root / "monitoring" / "tampered.db") as db:
        db.execute("UPDATE events SET record = 'not json' WHERE event_id = 't-1'")
        db.execute("UPDATE events SET record = ? WHERE event_id = 't-2'", ("[" * 5_000 + "]" * 5_000,))
    tampered = _churnops(root, "ab", "report", "--format", "json", "--set", "serve.event_log=monitoring/tampered.db")
    assert tampered.returncode in (0, 2) and "internal error" not in tampered.stderr, tampered.stderr
    if tampered.returncode == 0:
        assert json.loads(tampered.stdout)["arms"]["champion"]["scored"] == 1
    for line in (missing, linked, foreign, garbage, wrong, folder):
        assert "Traceback" not in line.stderr and len(line.stderr.strip().splitlines()) == 1


def test_a_locked_registry_is_one_clear_line_and_nothing_moves(two_models):
    """Another process holding the registry's database (an exclusive SQLite lock): 'ab promote'
    said 'internal error'. It is the registry's state: one line, exit 2, no alias moved."""
    import sqlite3

    root = two_models
    _aliases(root, champion="1", challenger="2", previous_champion=None)
    holder = sqlite3.connect(root / "mlflow.db", timeout=1, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        done = subprocess.run(
            [sys.executable, "-m", "churnops", "ab", "promote", "--set", "model.tracking_uri=sqlite:///mlflow.db"],
            cwd=root, capture_output=True, text=True, timeout=600,
            env={**os.environ, "CHURNOPS_API_TOKEN": TOKEN, "MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "NullPool"},
        )  # fmt: skip
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 2, done.stderr
    assert "internal error" not in done.stderr and "database is locked" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert _aliases(root) == {"champion": "1", "challenger": "2"}


def test_a_promotion_that_fails_halfway_puts_the_aliases_back(two_models):
    """The registry has no transaction across alias moves: a write refused at the last move (a
    trigger in MLflow's own database) left champion and challenger on the same version, and a
    second run then found nothing to do. The moves made are undone, and the error says so."""
    import sqlite3

    from churnops.errors import IntegrationError

    root = two_models
    config, document = _promotable(root)
    database = sqlite3.connect(root / "mlflow.db", isolation_level=None)
    database.execute(
        "CREATE TRIGGER refuse BEFORE DELETE ON registered_model_aliases WHEN old.alias = 'challenger' "
        "BEGIN SELECT RAISE(ABORT, 'registry write refused'); END"
    )
    try:
        with pytest.raises(IntegrationError, match="nothing promoted, the aliases are as they were"):
            ab.promote(config, document, "test")
    finally:
        database.execute("DROP TRIGGER refuse")
        database.close()
    assert _aliases(root) == {"champion": "1", "challenger": "2"}
    ab.promote(config, document, "test")  # the registry free again: the same numbers promote
    assert _aliases(root) == {"champion": "2", "previous-champion": "1"}


def test_a_dead_champion_on_labelled_live_traffic_is_an_alert_of_the_service(two_models):
    """v1 ranks customers as a coin would. Served, its windows said at most "column drift", and
    /metrics had churnops_alert 0 and no ROC-AUC, while /v1/drift measured 0.5 on the labels. After
    each window the service now holds the champion to monitor's rule on the labelled traffic."""
    root = two_models
    _aliases(root, champion="1", challenger=None, previous_champion=None)
    service = Service(root, "--set", "serve.event_log=monitoring/health.db")
    try:
        _score_and_label(service, 80_000, "dead")
        _close_window(service, 1, 81_000)  # the model is measured after this window, labels known
        metrics = service.request("GET", "/metrics")[1].decode()
        assert "churnops_serve_model_alert 1" in metrics
        assert 'churnops_serve_champion_roc_auc{version="1"} 0.' in metrics
        health = json.loads(service.request("GET", "/v1/drift")[1])["model"]["health"]
        assert health["decayed"] and health["labelled"] == 1_000 and health["roc_auc"] < 0.6, health
        assert "model near chance on live traffic: bank-churn v1 ROC-AUC" in health["message"]
        # the live-traffic dashboard's champion panels query what /metrics now holds
        panels = Path(__file__).parents[1] / "grafana" / "dashboards" / "churnops-serve.json"
        dashboard = json.loads(panels.read_text())
        queried = {
            name
            for panel in dashboard["panels"]
            for target in panel["targets"]
            for name in re.findall(r"churnops_serve_(?:champion_roc_auc|model_alert)", target["expr"])
        }
        assert queried == {"churnops_serve_champion_roc_auc", "churnops_serve_model_alert"}
        assert all(f"\n{name}{{" in metrics or f"\n{name} " in metrics for name in queried), metrics

        _aliases(root, champion="2")  # the real model: taken up after the next window, then measured
        _close_window(service, 2, 82_000)
        _score_and_label(service, 83_000, "alive")
        _close_window(service, 4, 84_000)
        health = json.loads(service.request("GET", "/v1/drift")[1])["model"]["health"]
        assert health["version"] == "2" and not health["decayed"] and health["roc_auc"] > 0.75, health
        assert "churnops_serve_model_alert 0" in service.request("GET", "/metrics")[1].decode()
    finally:
        service.stop()
