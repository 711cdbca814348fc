"""Faults: killed runs, a full disk, a missing DVC remote. Real processes, real signals, real limits.

The invariant after any of them: no half-written output, the previous complete outputs or the
new complete outputs (never a mix, once the next command has finished an interrupted commit),
and ``trigger.txt`` present exactly when the metrics say drift, from the same run.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from run_outputs import OUTPUTS, snapshot

from churnops.pipeline.outputs import JOURNAL

CHURNOPS = [sys.executable, "-m", "churnops"]


def assert_consistent(root: Path) -> str:
    """Every output complete and from one run; the trigger agrees with the metrics' verdict; the
    history's latest run is that run. Returns the run id."""
    metrics = json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())
    run_id = metrics["run_id"]
    for name in ("monitoring_report.html", "monitoring_report.standalone.html"):
        html = (root / "monitoring" / name).read_text()
        assert html.rstrip().endswith("</html>"), name
        assert run_id in html, f"{name} is from another run than the metrics"
    trigger = root / "trigger.txt"
    assert trigger.exists() == metrics["verdict"]["trigger"]
    if trigger.exists():
        assert f"run_id: {run_id}" in trigger.read_text()
    with sqlite3.connect(root / "monitoring" / "history.db") as db:
        latest = db.execute("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
    assert latest is not None and latest[0] == run_id, "the history's latest run is not the metrics' run"
    return run_id


@pytest.fixture(scope="module")
def drifted(tmp_path_factory, bank) -> Path:
    """A workspace after a drifted run, with a big no-drift batch ready (the next run removes the trigger)."""
    root = tmp_path_factory.mktemp("faults")
    (root / "data").mkdir()
    bank.write_csv(root / "data" / "churn.csv")
    assert subprocess.run([*CHURNOPS, "generate"], cwd=root, capture_output=True).returncode == 0
    done = subprocess.run([*CHURNOPS, "monitor"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (root / "trigger.txt").exists()
    # 300,000 rows drawn from the reference window itself: no drift, and long enough to kill
    pl.concat([bank.head(20_000)] * 15).write_parquet(root / "calm.parquet")
    return root


@pytest.fixture()
def ws(drifted, tmp_path) -> Path:
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(drifted, root)
    return root


KILL_HOOK = textwrap.dedent(
    """
    import importlib, os, signal, sys
    where, nth = sys.argv[1], int(sys.argv[2])
    calls = 0
    def kill_on_nth(real):
        def wrapper(*args, **kwargs):
            global calls
            calls += 1
            if calls == nth:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return wrapper
    owner_path, _, attribute = where.rpartition(".")
    try:
        owner = importlib.import_module(owner_path)
    except ModuleNotFoundError:  # module.Class.method
        module_path, _, class_name = owner_path.rpartition(".")
        owner = getattr(importlib.import_module(module_path), class_name)
    setattr(owner, attribute, kill_on_nth(getattr(owner, attribute)))
    from churnops.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)

KILL_POINTS = {
    "reading the batch": ("churnops.data.io.TableReader._parquet_chunks", 1),
    "testing the columns": ("churnops.pipeline.engines.evaluate", 1),
    "rendering the report": ("churnops.pipeline.monitoring.render_reports", 1),
    "recording the history": ("churnops.pipeline.monitoring.record_history", 1),
}


@pytest.mark.parametrize("moment", list(KILL_POINTS))
def test_sigkill_at_each_stage_of_a_run_never_leaves_a_half_written_or_inconsistent_output(ws, moment):
    """Killed while reading, testing, rendering or recording: the previous outputs, or the new ones
    finished by the next command (history row included) - decided by events, not by timing."""
    before = snapshot(ws)
    first_run = assert_consistent(ws)
    where, nth = KILL_POINTS[moment]
    args = ["monitor", "--current", "calm.parquet"]
    done = subprocess.run([sys.executable, "-c", KILL_HOOK, where, str(nth), *args], cwd=ws, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    journal = ws / "monitoring" / JOURNAL
    committed = journal.exists()
    assert committed == (moment == "recording the history")
    if not committed:
        assert snapshot(ws) == before
    after = subprocess.run([*CHURNOPS, "notify", "--dry-run"], cwd=ws, capture_output=True, text=True)
    assert after.returncode == 0, after.stderr
    assert not journal.exists()
    run_id = assert_consistent(ws)  # the history holds the recovered run too
    assert (run_id == first_run) == (not committed)
    assert not list((ws / "monitoring").glob(".*.tmp")) and not list((ws / "monitoring").glob(".*.bak"))


HOOK = textwrap.dedent(
    """
    import importlib, os, signal, sys
    where, nth = sys.argv[1], int(sys.argv[2])
    calls = 0
    def kill_on_nth(real):
        def wrapper(*args, **kwargs):
            global calls
            calls += 1
            if calls == nth:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return wrapper
    owner_path, _, attribute = where.rpartition(".")
    try:
        owner = importlib.import_module(owner_path)
    except ModuleNotFoundError:  # module.Class.method
        module_path, _, class_name = owner_path.rpartition(".")
        owner = getattr(importlib.import_module(module_path), class_name)
    setattr(owner, attribute, kill_on_nth(getattr(owner, attribute)))
    from churnops.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)

KILL_POINTS = {
    "reading the batch": ("churnops.data.io.TableReader._parquet_chunks", 1),
    "testing the columns": ("churnops.pipeline.engines.evaluate", 1),
    "rendering the report": ("churnops.pipeline.monitoring.render_reports", 1),
    "recording the history": ("churnops.pipeline.monitoring.record_history", 1),
}


def save(root: Path) -> Path:
    """Copy the current outputs aside."""
    saved = root / ".saved"
    saved.mkdir()
    for name in OUTPUTS:
        if (root / name).exists():
            (saved / name.replace("/", "__")).write_bytes((root / name).read_bytes())
    return saved


def restore(root: Path, saved: Path) -> None:
    """Put the saved outputs back exactly, and drop what a killed run left."""
    for name in OUTPUTS:
        copy = saved / name.replace("/", "__")
        if copy.exists():
            (root / name).write_bytes(copy.read_bytes())
        else:
            (root / name).unlink(missing_ok=True)
    for leftover in (root / "monitoring").glob(".*.tmp"):
        leftover.unlink()
    (root / "monitoring" / JOURNAL).unlink(missing_ok=True)


HOOK = textwrap.dedent(
    """
    import os, signal, sys
    kill_at = int(sys.argv[1])
    watched = {".outputs-commit.json", "monitoring_metrics.json", "monitoring_report.html",
               "monitoring_report.standalone.html", "report.css", "trigger.txt"}
    seen = 0
    def counted(real):
        def wrapper(*args, **kwargs):
            global seen
            target = os.path.basename(os.fspath(args[1] if real is REPLACE else args[0]))
            if target in watched:
                seen += 1
                if seen == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return wrapper
    REPLACE = os.replace
    os.replace = counted(os.replace)
    os.unlink = counted(os.unlink)
    from churnops.cli import main
    sys.exit(main(["monitor", "--current", "calm.parquet"]))
    """
)


@pytest.mark.parametrize("kill_at", range(1, 8))
def test_sigkill_inside_the_commit_is_finished_by_the_next_command(ws, kill_at):
    """Kill before each step of the commit: journal, 4 renames, trigger removal, journal removal
    (the count of renames and removals of outputs decides the moment, not a clock)."""
    before = snapshot(ws)
    first_run = assert_consistent(ws)
    done = subprocess.run([sys.executable, "-c", HOOK, str(kill_at)], cwd=ws, capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    journal = ws / "monitoring" / JOURNAL
    if kill_at == 1:  # before the journal: nothing committed, nothing changed
        assert not journal.exists() and snapshot(ws) == before
    else:
        assert journal.exists()
        # every visible file is complete, old or new - never half written
        json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())
        for name in ("monitoring_report.html", "monitoring_report.standalone.html"):
            assert (ws / "monitoring" / name).read_text().rstrip().endswith("</html>")
    # the next command that reads the outputs finishes the commit first
    after = subprocess.run([*CHURNOPS, "notify", "--dry-run"], cwd=ws, capture_output=True, text=True)
    assert after.returncode == 0, after.stderr
    assert not journal.exists()
    run_id = assert_consistent(ws)
    assert (run_id == first_run) == (kill_at == 1)
    if kill_at > 1:
        assert not (ws / "trigger.txt").exists()  # the new run found no drift
        assert "on calm.parquet" in after.stdout.lower() and "alert on" not in after.stdout.lower()  # no drift
    assert not list((ws / "monitoring").glob(".*.tmp")) or kill_at == 1
    assert not list((ws / "monitoring").glob(".*.bak"))


def _run_on_a_full_disk(ws, *args: str) -> subprocess.CompletedProcess:
    """The CLI under RLIMIT_FSIZE: every write past 20 kB fails for real (EFBIG)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    return subprocess.run([*CHURNOPS, *args], cwd=ws, capture_output=True, text=True, preexec_fn=limit)


def test_a_full_disk_is_one_line_and_keeps_the_previous_outputs(ws):
    """A real write error from the kernel: RLIMIT_FSIZE makes every write past 20 kB fail (EFBIG)."""
    before = snapshot(ws)
    done = _run_on_a_full_disk(ws, "monitor", "--current", "calm.parquet")
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "cannot write the monitoring outputs" in lines[0] and "file too large" in lines[0]
    assert "Traceback" not in done.stderr
    assert snapshot(ws) == before
    assert not list((ws / "monitoring").glob(".*.tmp"))
    assert_consistent(ws)


def test_no_space_left_on_device_is_reported_in_words(ws, cli, monkeypatch):
    import churnops.pipeline.outputs as outputs

    monkeypatch.chdir(ws)
    before = snapshot(ws)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "fsync", full)
    result = cli("monitor", "--current", "calm.parquet")
    assert result.exit_code == 2
    assert "cannot write the monitoring outputs" in result.output and "no space left on device" in result.output
    assert snapshot(ws) == before


def test_the_pipeline_summary_reports_a_full_disk(ws):
    done = _run_on_a_full_disk(ws, "pipeline", "--set", "paths.production='calm.parquet'")
    assert done.returncode == 2, (done.stdout, done.stderr)
    summary = json.loads((ws / "monitoring" / "pipeline_summary.json").read_text())
    stage = summary["stages"][0]
    assert stage["status"] == "failed" and "file too large" in stage["error"]
    assert_consistent(ws)


@pytest.fixture()
def repo(ws, monkeypatch):
    pytest.importorskip("dvc", reason="needs: dvc (pip install 'churnops[dvc]')")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(ws / ".no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    for args in (["init", "-q"], ["config", "user.name", "Test"], ["config", "user.email", "t@example.com"]):
        subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True)
    (ws / ".gitignore").write_text("/data/churn.csv\n/monitoring/\n/trigger.txt\n/.churnops/\n/*.parquet\n/.saved*\n")
    return ws


def test_a_dvc_remote_that_is_not_configured(repo):
    assert subprocess.run([*CHURNOPS, "dvc-setup"], cwd=repo, capture_output=True).returncode == 0
    subprocess.run([sys.executable, "-m", "dvc", "remote", "remove", "local_storage"], cwd=repo, check=True)
    done = subprocess.run([*CHURNOPS, "version"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "remote" in lines[0].lower(), done.stderr
    assert "Traceback" not in done.stderr
    pipeline = subprocess.run([*CHURNOPS, "pipeline"], cwd=repo, capture_output=True, text=True)
    assert pipeline.returncode == 4, pipeline.stderr
    summary = json.loads((repo / "monitoring" / "pipeline_summary.json").read_text())
    assert summary["stages"][2]["status"] == "failed" and "remote" in summary["stages"][2]["error"].lower()
    assert_consistent(repo)
