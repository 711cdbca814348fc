"""Concurrent runs in one workspace tell one story each.

``churnops pipeline`` (on a drifted batch) and ``churnops monitor`` (on a calm one) are started
together, twenty times. Whatever order the workspace lock gives them, afterwards the report,
metrics, trigger and latest history row are from one run, and the pipeline's notification and
summary describe the pipeline's own run - never the other's numbers under its verdict.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

CHURNOPS = [sys.executable, "-m", "churnops"]
ROUNDS = 20


def latest_outputs_are_one_run(root: Path) -> str:
    metrics = json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())
    run_id = metrics["run_id"]
    for name in ("monitoring_report.html", "monitoring_report.standalone.html"):
        assert run_id in (root / "monitoring" / name).read_text(), name
    trigger = root / "trigger.txt"
    assert trigger.exists() == metrics["verdict"]["trigger"]
    if trigger.exists():
        assert f"run_id: {run_id}" in trigger.read_text()
    return run_id


def test_pipeline_and_monitor_started_together_never_mix_their_stories(tmp_path, bank):
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    bank.head(6000).write_csv(root / "data" / "churn.csv")
    (root / "churnops.toml").write_text("[data]\nreference_rows = [0, 4000]\nproduction_rows = [4000, 6000]\n")
    assert subprocess.run([*CHURNOPS, "generate"], cwd=root, capture_output=True).returncode == 0
    bank.slice(2000, 2000).write_csv(root / "calm.csv")
    seen_orders = set()
    for round_number in range(ROUNDS):
        pipeline = subprocess.Popen(
            [*CHURNOPS, "pipeline"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        monitor = subprocess.Popen(
            [*CHURNOPS, "monitor", "--current", "calm.csv"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, pipeline_err = pipeline.communicate(timeout=600)
        _, monitor_err = monitor.communicate(timeout=600)
        # not a git repository: stage 3 (DVC) fails, everything else runs (exit 4)
        assert pipeline.returncode == 4, pipeline_err
        assert monitor.returncode == 0, monitor_err
        latest = latest_outputs_are_one_run(root)
        summary = json.loads((root / "monitoring" / "pipeline_summary.json").read_text())
        pipeline_run = summary["run_id"]
        with sqlite3.connect(root / "monitoring" / "history.db") as db:
            rows = dict(db.execute("SELECT run_id, n_drifted FROM runs").fetchall())
            newest = db.execute("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()[0]
        assert len(rows) == 2 * (round_number + 1)  # both runs of every round recorded
        assert newest == latest
        assert pipeline_run in rows
        # the pipeline's notification is about the pipeline's own run, drifted batch included
        note = (root / "monitoring" / "notification.txt").read_text()
        assert f"Run: {pipeline_run}" in note
        assert summary["verdict"]["trigger"] is True and summary["drift_detected"] is True
        assert "Alert on bank_churn_prod.csv" in note or "pipeline error on bank_churn_prod.csv" in note
        assert "0 of 16 columns" not in note
        assert rows[pipeline_run] == 3  # the drifted batch's three columns, not the calm batch's
        seen_orders.add("pipeline last" if latest == pipeline_run else "monitor last")
    print("orders seen:", seen_orders)


def three_batches(folder: Path, seed: int) -> None:
    """ref.csv (3,000 rows of x), drifted.csv (x shifted by 2 sd) and calm.csv (1,000 rows each)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    pl.DataFrame({"x": rng.normal(0, 1, 3_000)}).write_csv(folder / "ref.csv")
    pl.DataFrame({"x": rng.normal(2, 1, 1_000)}).write_csv(folder / "drifted.csv")
    pl.DataFrame({"x": rng.normal(0, 1, 1_000)}).write_csv(folder / "calm.csv")


def test_a_calm_run_of_another_configuration_leaves_the_alert_it_shares_a_trigger_with(tmp_path):
    """Two configurations (two models) with their own monitoring folders and the default
    paths.trigger: the calm one removed the other's alert ('stale trigger.txt removed') while
    that one's metrics still said trigger: true."""

    three_batches(tmp_path, 3)
    for name, batch in (("a", "drifted.csv"), ("b", "calm.csv")):
        (tmp_path / f"{name}.toml").write_text(
            f'[paths]\nreference = "ref.csv"\nproduction = "{batch}"\nmonitoring_dir = "monitoring_{name}"\n'
        )

    def run(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CHURNOPS, "monitor", "-c", f"{name}.toml"], cwd=tmp_path, capture_output=True, text=True
        )

    assert run("a").stdout.startswith("ALERT")
    alert = (tmp_path / "trigger.txt").read_text()
    done = run("b")
    assert done.stdout.startswith("OK") and "stale" not in done.stdout, done.stdout
    assert "holds the alert of another configuration (its metrics: " in done.stderr, done.stderr
    assert "monitoring_a" in done.stderr and "left in place" in done.stderr
    assert (tmp_path / "trigger.txt").read_text() == alert
    # an alert of the other one replaces it - and says so
    (tmp_path / "b.toml").write_text(
        '[paths]\nreference = "ref.csv"\nproduction = "drifted.csv"\nmonitoring_dir = "monitoring_b"\n'
    )
    done = run("b")
    assert done.stdout.startswith("ALERT") and "replaced by this run's" in done.stderr, done.stderr
    b_alert = (tmp_path / "trigger.txt").read_text()
    # b calm again: its own alert ends, and the one it replaced, a's, still standing, is put back
    # (it had been removed as b's 'stale' trigger while a's metrics still said trigger: true)
    (tmp_path / "b.toml").write_text(
        '[paths]\nreference = "ref.csv"\nproduction = "calm.csv"\nmonitoring_dir = "monitoring_b"\n'
    )
    done = run("b")
    assert done.stdout.startswith("OK") and "is put back" in done.stderr, done.stdout + done.stderr
    assert (tmp_path / "trigger.txt").read_text() == alert
    # a's own alert, once calm again, is removed as before; nothing else stands
    (tmp_path / "a.toml").write_text(
        '[paths]\nreference = "ref.csv"\nproduction = "calm.csv"\nmonitoring_dir = "monitoring_a"\n'
    )
    done = run("a")
    assert done.stdout.startswith("OK") and not (tmp_path / "trigger.txt").exists(), done.stdout + done.stderr
    assert b_alert != alert


def test_a_calm_pipeline_beside_another_configurations_alert_is_calm_even_in_a_copied_workspace(tmp_path):
    """A pipeline decided its 'Check drift' stage from trigger.txt existing: beside another
    configuration's standing alert, a calm run was UNSTABLE, versioned its batch and sent an
    alert. And in a copy of the workspace the other's alert was taken for this one's stale trigger."""
    import shutil

    first = tmp_path / "ws"
    first.mkdir()
    three_batches(first, 5)
    for name, batch in (("a", "drifted.csv"), ("b", "calm.csv")):
        (first / f"{name}.toml").write_text(
            f'[paths]\nreference = "ref.csv"\nproduction = "{batch}"\nmonitoring_dir = "monitoring_{name}"\n'
        )
    done = subprocess.run([*CHURNOPS, "monitor", "-c", "a.toml"], cwd=first, capture_output=True, text=True)
    assert done.stdout.startswith("ALERT"), done.stdout + done.stderr
    alert = (first / "trigger.txt").read_text()
    copy = tmp_path / "copy"
    shutil.copytree(first, copy, symlinks=True)
    for root in (first, copy):
        done = subprocess.run([*CHURNOPS, "pipeline", "-c", "b.toml"], cwd=root, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        summary = json.loads((root / "monitoring_b" / "pipeline_summary.json").read_text())
        stages = {stage["name"]: stage for stage in summary["stages"]}
        check = next(stage for name, stage in stages.items() if "drift" in name.lower() and "check" in name.lower())
        assert check["status"] == "success", check
        assert "another configuration's alert" in check["detail"], check
        assert summary["drift_detected"] is False
        assert [stage["status"] for stage in summary["stages"]][2] == "skipped"  # nothing versioned
        assert (root / "trigger.txt").read_text() == alert  # a's alert stands, in the copy too


def test_an_alert_of_a_configuration_whose_monitoring_folder_is_outside_the_workspace_stands(tmp_path):
    """The other configuration's metrics were looked for inside the workspace only: with its
    monitoring folder elsewhere (an absolute paths.monitoring_dir), its standing alert was removed
    as this configuration's stale trigger."""

    root = tmp_path / "ws"
    root.mkdir()
    three_batches(root, 7)
    outside = tmp_path / "elsewhere" / "monitoring_b"
    (root / "a.toml").write_text('[paths]\nreference = "ref.csv"\nproduction = "calm.csv"\nmonitoring_dir = "mon_a"\n')
    (root / "b.toml").write_text(
        f'[paths]\nreference = "ref.csv"\nproduction = "drifted.csv"\nmonitoring_dir = "{outside}"\n'
    )

    def run(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CHURNOPS, "monitor", "-c", f"{name}.toml"], cwd=root, capture_output=True, text=True)

    assert run("b").stdout.startswith("ALERT")
    alert = (root / "trigger.txt").read_text()
    done = run("a")
    assert done.stdout.startswith("OK") and "left in place" in done.stderr, done.stdout + done.stderr
    assert (root / "trigger.txt").read_text() == alert


def test_configurations_sharing_a_trigger_take_turns_with_it(tmp_path):
    """Each monitoring folder has its own workspace lock, but two configurations with folders of
    their own share the default trigger.txt: their runs were not serialised, so one could remove
    or replace the trigger while the other wrote it. A run also holds a lock beside a trigger
    outside its monitoring folder: while another run holds it, this one waits (or, --no-wait,
    stops before reading anything)."""
    from churnops.pipeline.lock import workspace_lock

    three_batches(tmp_path, 5)
    for name, batch in (("a", "drifted.csv"), ("b", "calm.csv")):
        (tmp_path / f"{name}.toml").write_text(
            f'[paths]\nreference = "ref.csv"\nproduction = "{batch}"\nmonitoring_dir = "monitoring_{name}"\n'
        )
    with workspace_lock(tmp_path / ".trigger.txt.lock", purpose="another configuration's run"):
        done = subprocess.run(
            [*CHURNOPS, "monitor", "-c", "b.toml", "--no-wait"], cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert ".trigger.txt.lock (pid " in done.stderr and "another configuration's run" in done.stderr, done.stderr
        assert not (tmp_path / "monitoring_b" / "monitoring_metrics.json").exists()
    done = subprocess.run([*CHURNOPS, "monitor", "-c", "a.toml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("ALERT"), done.stdout + done.stderr
    assert (tmp_path / "trigger.txt").exists()
    # a trigger inside one configuration's monitoring folder, shared by another's: the same lock
    for name, folder in (("c", "m_c"), ("d", "m_d")):
        (tmp_path / f"{name}.toml").write_text(
            f'[paths]\nreference = "ref.csv"\nproduction = "calm.csv"\nmonitoring_dir = "{folder}"\n'
            'trigger = "m_c/trigger.txt"\n'
        )
    with workspace_lock(tmp_path / "m_c" / ".workspace.lock"), workspace_lock(tmp_path / "m_c" / ".trigger.txt.lock"):
        done = subprocess.run(
            [*CHURNOPS, "monitor", "-c", "d.toml", "--no-wait"], cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 2 and "m_c/.trigger.txt.lock" in done.stderr, done.stdout + done.stderr
