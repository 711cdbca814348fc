"""The other ways to run the pipeline: the DVC pipeline (dvc.yaml) and the GitHub workflow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def dvc(root: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DVC_NO_ANALYTICS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    assert done.returncode == 0, f"dvc {' '.join(args)}\n{done.stdout}{done.stderr}"
    return done.stdout


def test_dvc_repro_metrics_show_and_diff(bank_workspace, monkeypatch):
    pytest.importorskip("dvc", reason="needs: dvc")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(bank_workspace / "none"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = bank_workspace
    for args in (["init", "-q"], ["config", "user.name", "T"], ["config", "user.email", "t@example.com"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    (root / ".gitignore").write_text(
        "/data/churn.csv\n/.churnops/\n/trigger.txt\n/monitoring/*.css\n/monitoring/*.standalone.html\n"
    )
    dvc(root, "init", "-q")
    dvc(root, "repro")
    shown = json.loads(dvc(root, "metrics", "show", "--json"))
    metrics = next(iter(shown.values()))["data"]["monitoring/monitoring_metrics.json"]["data"]
    assert metrics["dataset_drift"]["score"] == pytest.approx(0.1875)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "seed drift"], cwd=root, check=True)

    params = (root / "params.yaml").read_text().replace("intensity: 1.0", "intensity: 0.0")
    (root / "params.yaml").write_text(params)
    dvc(root, "repro")
    diff = json.loads(dvc(root, "metrics", "diff", "--json"))
    change = diff["monitoring/monitoring_metrics.json"]["dataset_drift.score"]
    assert change["old"] == pytest.approx(0.1875) and change["new"] == 0.0
    status = dvc(root, "status")
    assert "changed" not in status  # reproduced and up to date


def test_github_workflow_is_scheduled_and_uploads_the_report():
    yaml = pytest.importorskip("yaml", reason="needs: PyYAML")
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "drift-monitoring.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    assert triggers["schedule"][0]["cron"] == "0 2 * * *"
    steps = workflow["jobs"]["pipeline"]["steps"]
    commands = " ".join(step.get("run", "") for step in steps)
    assert "churnops pipeline" in commands and "::warning title=churnops alert::" in commands
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact"))
    assert "monitoring/*.html" in upload["with"]["path"] and upload["if"] == "always()"
