"""DVC versioning in this repository's own layout: dvc.yaml's `generate` stage owns the batch.

Real git repositories and a real DVC local remote in temporary folders; `dvc.yaml`, `params.yaml`
and `.gitignore` are copied from this checkout, so the tests see what a clone of it sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dvc", reason="needs: dvc (pip install 'churnops[dvc]')")

CHECKOUT = Path(__file__).resolve().parents[1]
BATCH = Path("data/production/bank_churn_prod.csv")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def tool_env() -> dict[str, str]:
    """`dvc repro` runs the stages' `churnops ...` commands: this Python's churnops, this checkout's code."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    pythonpath = os.pathsep.join(filter(None, [str(CHECKOUT / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PATH": path, "PYTHONPATH": pythonpath}


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, env=tool_env()
    )


def new_repo(root: Path, *files: str) -> Path:
    """A git repository with its own identity holding ``files`` copied from this checkout."""
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    for name in files:
        shutil.copy(CHECKOUT / name, root / name)
    git(root, "add", *files)
    git(root, "commit", "-q", "--allow-empty", "-m", "project")
    return root


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    return tmp_path


@pytest.fixture()
def clone(isolated, monkeypatch):
    """This repository's layout: its dvc.yaml, params.yaml and .gitignore (which ignores /data/)."""
    root = new_repo(isolated / "project", ".gitignore", "dvc.yaml", "params.yaml")
    monkeypatch.chdir(root)
    return root


def remote_copy(root: Path, batch: Path) -> Path:
    """Where DVC 3 keeps ``batch`` in the local remote ./dvc_storage (content-addressed by md5)."""
    digest = hashlib.md5(batch.read_bytes()).hexdigest()
    return root / "dvc_storage" / "files" / "md5" / digest[:2] / digest[2:]


def summary(root: Path) -> dict:
    return json.loads((root / "monitoring" / "pipeline_summary.json").read_text())


def test_seed_workflow_versions_the_batch_through_its_dvc_yaml_stage(clone, cli):
    """`churnops dvc-setup && churnops data init && churnops generate && churnops pipeline` in a clone."""
    (clone / "notes.txt").write_text("staged by the user, not part of any version\n")
    git(clone, "add", "notes.txt")
    for command in (["dvc-setup"], ["data", "init"], ["generate"]):
        result = cli(*command)
        assert result.exit_code == 0, result.output
    result = cli("pipeline")
    assert result.exit_code == 0, result.output
    assert "Pipeline UNSTABLE" in result.output
    report = summary(clone)
    versioning = report["stages"][2]
    assert versioning["name"] == "DVC Versioning" and versioning["status"] == "success", versioning
    assert versioning["outputs"]["pushed"] and versioning["outputs"]["new_version"]
    assert versioning["outputs"]["remote"].startswith("'local_storage' (") and "pushed to DVC remote" in result.output
    commit_a = git(clone, "rev-parse", "HEAD").strip()
    assert versioning["outputs"]["commit"] == commit_a
    assert versioning["outputs"]["dvc_file"] == str(clone / "dvc.lock")
    batch_a = sha(clone / BATCH)

    # the version is a commit of dvc.lock, with the run's facts as trailers
    assert "dvc.lock" in git(clone, "show", "--name-only", "--format=", "HEAD").split()
    message = git(clone, "log", "-1", "--format=%B")
    assert f"churnops-run-id: {report['run_id']}" in message
    assert "churnops-drift-score: 0.1875" in message and "churnops-rows: 10000" in message
    assert f"churnops-sha256: {batch_a}" in message
    assert "notes.txt" not in git(clone, "show", "--name-only", "--format=", "HEAD")
    assert git(clone, "diff", "--cached", "--name-only").split() == ["notes.txt"]  # still staged, untouched

    # dvc push put the bytes in the local remote
    stored = remote_copy(clone, clone / BATCH)
    assert stored.is_file() and sha(stored) == batch_a

    # an unchanged batch: no new version
    result = cli("version")
    assert result.exit_code == 0 and "unchanged" in result.output, result.output
    assert git(clone, "rev-parse", "HEAD").strip() == commit_a

    assert cli("generate", "--scenario", "strong").exit_code == 0
    result = cli("pipeline")
    assert result.exit_code == 0, result.output
    # dvc.lock records params.yaml's scenario, not the --scenario the batch was made with: say so
    assert "the batch was made with scenario.name=strong" in result.output
    commit_b = git(clone, "rev-parse", "HEAD").strip()
    batch_b = sha(clone / BATCH)
    assert commit_b != commit_a and batch_b != batch_a

    listed = json.loads(cli("versions", "list", "--format", "json").output)
    assert [(v["commit"], v["sha256"]) for v in listed] == [(commit_b, batch_b), (commit_a, batch_a)]
    assert listed[1]["run_id"] == report["run_id"] and float(listed[1]["drift_score"]) == pytest.approx(0.1875)
    assert listed[1]["rows"] == "10000"
    assert commit_a[:12] in cli("versions", "list").output

    # restore from the remote alone: the local cache is gone
    shutil.rmtree(clone / ".dvc" / "cache")
    delivered = (clone / BATCH).read_bytes()
    (clone / BATCH).write_bytes(delivered + b"\n")  # a batch delivered since, never versioned
    result = cli("versions", "restore", commit_a[:10])
    assert result.exit_code != 0 and "is no version of the batch (nor one churnops generated)" in result.output
    assert (clone / BATCH).read_bytes() == delivered + b"\n"
    (clone / BATCH).write_bytes(delivered)  # a version: replaced
    result = cli("versions", "restore", commit_a[:10])
    assert result.exit_code == 0, result.output
    assert sha(clone / BATCH) == batch_a
    result = cli("versions", "restore", commit_b, "-o", "b.csv")
    assert result.exit_code == 0, result.output
    assert sha(clone / "b.csv") == batch_b
    (clone / "notes.csv").write_text("mine\n")  # anyone's file is replaced only with --force
    result = cli("versions", "restore", commit_b, "-o", "notes.csv")
    assert result.exit_code != 0 and "is no version of the batch" in result.output, result.output
    assert (clone / "notes.csv").read_text() == "mine\n"
    assert cli("versions", "restore", commit_b, "-o", "notes.csv", "--force").exit_code == 0
    assert sha(clone / "notes.csv") == batch_b
    result = cli("versions", "restore", commit_b, "-o", "dvc.lock", "--force")
    assert result.exit_code != 0 and "names a file git, DVC or your configuration keep" in result.output
    assert git(clone, "status", "--porcelain", "--", "dvc.lock", "dvc.yaml", "params.yaml") == ""  # git untouched


def test_dvc_repro_still_works_and_its_batches_are_versioned(clone, cli):
    """`dvc repro` after the seed's workflow, then a params change that remakes the batch."""
    for command in (["dvc-setup"], ["data", "init"], ["generate"], ["pipeline"]):
        result = cli(*command)
        assert result.exit_code == 0, result.output
    first = sha(clone / BATCH)

    done = dvc(clone, "repro")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'generate' didn't change, skipping" in done.stdout  # the versioned batch is the stage's output
    assert sha(clone / BATCH) == first
    assert (clone / "monitoring" / "monitoring_metrics.json").is_file()
    done = dvc(clone, "status")
    assert done.returncode == 0 and "up to date" in done.stdout, done.stdout + done.stderr

    params = (clone / "params.yaml").read_text().replace("intensity: 1.0", "intensity: 0.5")
    (clone / "params.yaml").write_text(params)
    done = dvc(clone, "repro")
    assert done.returncode == 0, done.stdout + done.stderr
    second = sha(clone / BATCH)
    assert second != first
    result = cli("version")
    assert result.exit_code == 0, result.output
    assert "committed" in result.output and "stage 'generate'" in result.output
    assert "the batch was made with" not in result.output  # dvc repro made it from params.yaml
    changed = git(clone, "show", "--name-only", "--format=", "HEAD").split()
    assert {"dvc.lock", "params.yaml"} <= set(changed)  # the lock and the params it records, together
    listed = json.loads(cli("versions", "list", "--format", "json").output)
    assert [v["sha256"] for v in listed] == [second, first]
    assert cli("versions", "restore", listed[1]["commit"], "-o", "first.csv").exit_code == 0
    assert sha(clone / "first.csv") == first


def test_versions_span_a_move_from_a_dvc_file_to_a_stage(isolated, monkeypatch, cli):
    """A history begun with `dvc add` (the seed's way) goes on through dvc.yaml's stage."""
    root = new_repo(isolated / "project")
    monkeypatch.chdir(root)
    (root / ".gitignore").write_text("/data/churn.csv\n/monitoring/\n/trigger.txt\n/.churnops/\n")
    for command in (["dvc-setup"], ["data", "init"], ["generate"], ["monitor"], ["version"]):
        result = cli(*command)
        assert result.exit_code == 0, result.output
    dvc_file = root / "data" / "production" / "bank_churn_prod.csv.dvc"
    assert "bank_churn_prod.csv.dvc" in git(root, "show", "--name-only", "--format=", "HEAD")
    first = sha(root / BATCH)

    done = dvc(root, "remove", str(dvc_file.relative_to(root)))  # the batch leaves its .dvc file ...
    assert done.returncode == 0, done.stderr
    for name in ("dvc.yaml", "params.yaml"):  # ... for dvc.yaml's generate stage
        shutil.copy(CHECKOUT / name, root / name)
    git(root, "add", "--update")
    git(root, "add", "dvc.yaml", "params.yaml")
    git(root, "commit", "-q", "-m", "batch made by dvc.yaml")
    assert cli("generate", "--scenario", "strong").exit_code == 0
    assert cli("monitor").exit_code == 0
    result = cli("version")
    assert result.exit_code == 0 and "stage 'generate'" in result.output, result.output
    second = sha(root / BATCH)

    listed = json.loads(cli("versions", "list", "--format", "json").output)
    assert [v["sha256"] for v in listed] == [second, first]  # the move commit itself is no version
    for version, expected in zip(listed, (second, first), strict=True):
        result = cli("versions", "restore", version["commit"], "-o", "restored.csv")
        assert result.exit_code == 0, result.output
        assert sha(root / "restored.csv") == expected


def test_a_stage_output_without_cache_cannot_be_versioned(clone, cli):
    out = "      - data/production/bank_churn_prod.csv\n"
    text = (clone / "dvc.yaml").read_text()
    assert out in text
    (clone / "dvc.yaml").write_text(text.replace(out, out.rstrip("\n") + ":\n          cache: false\n", 1))
    for command in (["dvc-setup"], ["data", "init"], ["generate"]):
        assert cli(*command).exit_code == 0
    result = cli("version")
    assert result.exit_code == 2
    assert "'cache: false'" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("remote", ["../../somewhere", "dvc_storage/../../somewhere"])
def test_a_relative_remote_that_leaves_the_project_is_refused(clone, cli, remote):
    result = cli("dvc-setup", "--remote", remote)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: dvc.remote_url")
    assert "leaves the project folder" in lines[0] and "give an absolute path" in lines[0]
    assert not (clone / ".dvc").exists() and not (clone.parent.parent / "somewhere").exists()  # nothing done

    (clone / "churnops.toml").write_text(f'[dvc]\nremote_url = "{remote}"\n')
    result = cli("dvc-setup")
    assert result.exit_code == 2 and "dvc.remote_url" in result.output


def test_remotes_inside_the_project_absolute_paths_and_urls_are_taken(clone, cli, tmp_path):
    assert cli("dvc-setup", "--remote", "storage/../dvc_storage").exit_code == 0
    assert (clone / "dvc_storage").is_dir()
    outside = tmp_path / "elsewhere" / "storage"
    assert cli("dvc-setup", "--remote", str(outside)).exit_code == 0
    assert f"url = {outside}" in (clone / ".dvc" / "config").read_text()
    result = cli("dvc-setup", "--remote", "s3://bucket/churn")
    assert result.exit_code == 0, result.output
    assert "url = s3://bucket/churn" in (clone / ".dvc" / "config").read_text()


def test_a_hostile_dvc_file_is_one_line_not_a_crash(tmp_path):
    """A .dvc file nested 20,000 levels deep (DVC's YAML reader recurses) is said to be
    unreadable, in one line - not an internal error."""
    from churnops.errors import IntegrationError
    from churnops.integrations.dvc import find_owner

    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    batch = tmp_path / "batch.csv"
    batch.write_text("a\n1\n")
    (tmp_path / "batch.csv.dvc").write_text("outs: " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(IntegrationError, match="DVC cannot read the project's DVC files") as caught:
        find_owner(tmp_path, batch)
    assert "\n" not in str(caught.value)


def test_dvc_setup_keeps_the_runs_lock_files_out_of_git(tmp_path, cli, monkeypatch):
    """A project of your own (its .gitignore ignores nothing of churnops'): `git add -A` after a
    run must not commit the lock files beside the trigger and in the monitoring folder."""
    root = new_repo(tmp_path / "own")
    monkeypatch.chdir(root)
    (root / ".gitignore").write_text("/monitoring/*\n!/monitoring/keep.md\n")
    assert cli("dvc-setup").exit_code == 0
    lines = (root / ".gitignore").read_text().splitlines()
    assert "/.trigger.txt.lock" in lines
    assert "/monitoring/.workspace.lock" not in lines  # /monitoring/* covers it already
    assert "/.mlflow.db.lock" in lines  # beside the model registry, which every configuration here shares
    assert cli("dvc-setup").exit_code == 0  # again: nothing added twice
    assert (root / ".gitignore").read_text().splitlines() == lines
    assert ".gitignore" in git(root, "show", "--name-only", "--format=", "HEAD").split()
    for command in (["data", "init"], ["generate"], ["monitor"]):
        assert cli(*command).exit_code == 0
    assert (root / ".trigger.txt.lock").exists() and (root / "monitoring" / ".workspace.lock").exists()
    git(root, "add", "-A")
    staged = git(root, "diff", "--cached", "--name-only").split()
    assert not [name for name in staged if name.endswith(".lock")], staged


def test_dvc_setup_writes_lock_patterns_git_matches_whatever_their_names(tmp_path, cli, monkeypatch):
    """Folders named with brackets or a trailing blank: the patterns were written as given, which
    git reads as wildcards, so the lock files stayed untracked files for every git add -A."""
    root = new_repo(tmp_path / "own")
    monkeypatch.chdir(root)
    (root / "churnops.toml").write_text('[paths]\nmonitoring_dir = "mon[1]"\ntrigger = "ci out/trig[2].txt"\n')
    assert cli("dvc-setup").exit_code == 0
    for lock in ("mon[1]/.workspace.lock", "ci out/.trig[2].txt.lock", ".mlflow.db.lock"):
        (root / lock).parent.mkdir(parents=True, exist_ok=True)
        (root / lock).touch()
    git(root, "add", "-A")
    staged = git(root, "diff", "--cached", "--name-only").split("\n")
    assert not [name for name in staged if name.endswith(".lock")], staged
