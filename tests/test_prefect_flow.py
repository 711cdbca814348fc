"""The Prefect example flow runs for real: Prefect's own local server on 127.0.0.1, churnops'
Python interface, DVC with a local remote, the notification channel of the project's
churnops.toml. A drifted batch is versioned and notified as an alert; an unchanged batch is
notified as ok and makes no commit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import churnops

pytest.importorskip("prefect", reason="needs: prefect (pip install 'churnops[prefect]')")
pytest.importorskip("dvc", reason="needs: dvc (pip install 'churnops[dvc]')")
if shutil.which("git") is None:
    pytest.skip("needs: git", allow_module_level=True)

FLOW = Path(__file__).resolve().parents[1] / "examples" / "prefect_flow.py"
pytestmark = pytest.mark.slow


def _git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    _git(root, "init", "--quiet")
    _git(root, "config", "user.name", "churnops tests")
    _git(root, "config", "user.email", "tests@churnops.invalid")
    (root / "churnops.toml").write_text(
        '[columns]\ntarget = "Churn Flag"\n\n'
        '[[notify.channels]]\ntype = "file"\npath = "monitoring/notifications.jsonl"\non = ["drift", "ok", "error"]\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "churnops", "-q", "dvc-setup"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    _git(root, "add", "churnops.toml")
    _git(root, "commit", "--quiet", "-m", "project")
    (root / "data" / "production").mkdir(parents=True)
    churnops.generate(20_000).write_csv(root / "data" / "reference.csv")
    return root


def _run_flow(project: Path, batch: Path, tmp_path: Path, succeed: bool = True) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PREFECT_") or key in ("PREFECT_HOME",)  # never a configured server
    }
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        # Prefect waits 20 s for its local server by default: too little on a loaded machine
        # (a wait for the server to answer, bounded, not a clock the test depends on)
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
    }
    # paths relative to the folder the flow is started in, as the documentation writes them
    relative = [str(p.relative_to(tmp_path)) for p in (project, project / "data" / "reference.csv", batch)]
    done = subprocess.run(
        [sys.executable, str(FLOW), "--project", relative[0], "--reference", relative[1], "--batch", relative[2]],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip
    if not succeed:
        assert done.returncode != 0
        return {"stderr": done.stderr[-3000:]}
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_the_flow_versions_and_notifies_a_drifted_batch_and_only_notifies_a_calm_one(project, tmp_path):
    batch = project / "data" / "production" / "batch.csv"
    churnops.generate(10_000, start=20_000, scenario="seed").write_csv(batch)
    commits_before = _git(project, "rev-list", "--count", "HEAD").strip()

    summary = _run_flow(project, batch, tmp_path)

    assert summary["status"] == "alert" and {"Balance", "Credit Score", "Income"} <= set(summary["drifted_columns"])
    versioned = summary["versioned"]
    assert versioned["changed"] and versioned["pushed"] and versioned["remote"].startswith("'")
    metrics = json.loads((project / "monitoring" / "prefect" / "metrics.json").read_text())
    message = _git(project, "log", "-1", "--format=%B")
    assert f"churnops-run-id: {metrics['run_id']}" in message and "churnops-drift-score" in message
    assert _git(project, "rev-parse", "HEAD").strip() == versioned["commit"]
    assert any(p.is_file() for p in (project / "dvc_storage").rglob("*"))  # pushed to the local remote
    assert (project / "monitoring" / "prefect" / "report.html").read_text().startswith("<!DOCTYPE html>")
    notes = [json.loads(line) for line in (project / "monitoring" / "notifications.jsonl").read_text().splitlines()]
    assert [n["status"] for n in notes] == ["drift"]

    # the same batch again: nothing new to version, the team is told again
    again = _run_flow(project, batch, tmp_path)
    assert again["status"] == "alert" and not again["versioned"]["changed"]
    assert int(_git(project, "rev-list", "--count", "HEAD")) == int(commits_before) + 1

    # a batch without drift: no version, an "ok" notification
    calm = project / "data" / "production" / "calm.csv"
    churnops.generate(10_000, start=20_000).write_csv(calm)
    quiet = _run_flow(project, calm, tmp_path)
    assert quiet["status"] == "ok" and quiet["versioned"] is None
    assert int(_git(project, "rev-list", "--count", "HEAD")) == int(commits_before) + 1
    notes = [json.loads(line) for line in (project / "monitoring" / "notifications.jsonl").read_text().splitlines()]
    assert [n["status"] for n in notes] == ["drift", "drift", "ok"]


def test_a_failed_versioning_is_told_to_the_team_and_fails_the_flow(project, tmp_path):
    outside = tmp_path / "outside.csv"  # not in the project's git repository: DVC cannot version it
    churnops.generate(10_000, start=20_000, scenario="seed").write_csv(outside)
    failed = _run_flow(project, outside, tmp_path, succeed=False)
    told = project / "monitoring" / "notifications.jsonl"
    assert told.is_file(), failed["stderr"]  # the flow failed for the expected reason, and said so
    notes = [json.loads(line) for line in told.read_text().splitlines()]
    assert [n["status"] for n in notes] == ["error"]
