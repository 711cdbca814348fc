"""DVC versioning and `churnops pipeline` with a real git repository and a real DVC remote."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dvc", reason="needs: dvc (pip install 'churnops[dvc]')")

BATCH = Path("data/production/bank_churn_prod.csv")
CHURNOPS = [sys.executable, "-m", "churnops"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def repo(bank_workspace, monkeypatch):
    """A git repository (with its own identity) holding data/churn.csv; no global git config."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(bank_workspace / ".no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    git(bank_workspace, "init", "-q")
    git(bank_workspace, "config", "user.name", "Test")
    git(bank_workspace, "config", "user.email", "test@example.com")
    (bank_workspace / ".gitignore").write_text("/data/churn.csv\n/monitoring/\n/trigger.txt\n/.churnops/\n")
    return bank_workspace


def test_dvc_setup_is_idempotent_and_keeps_the_remote_out_of_git(repo, cli):
    result = cli("dvc-setup")
    assert result.exit_code == 0, result.output
    assert "DVC initialized" in result.output and "committed" in result.output
    assert (repo / ".dvc" / "config").is_file() and (repo / "dvc_storage").is_dir()
    assert "/dvc_storage/" in (repo / ".gitignore").read_text()
    commits = git(repo, "rev-list", "--count", "HEAD")
    result = cli("dvc-setup")
    assert result.exit_code == 0 and "already set up" in result.output
    assert git(repo, "rev-list", "--count", "HEAD") == commits
    assert "local_storage" in (repo / ".dvc" / "config").read_text()


def test_version_list_and_restore_byte_identical(repo, cli):
    assert cli("dvc-setup").exit_code == 0
    assert cli("generate").exit_code == 0
    assert cli("monitor").exit_code == 0
    batch_a = sha(repo / BATCH)
    result = cli("version")
    assert result.exit_code == 0, result.output
    assert "committed" in result.output
    assert f"; pushed to DVC remote 'local_storage' ({repo / 'dvc_storage'})" in result.output  # where it went
    message = git(repo, "log", "-1", "--format=%B")
    assert "drift score 0.188" in message and "churnops-run-id:" in message and f"churnops-sha256: {batch_a}" in message
    commit_a = git(repo, "rev-parse", "HEAD").strip()

    result = cli("version")  # unchanged batch: no new commit
    assert result.exit_code == 0 and "unchanged" in result.output
    assert git(repo, "rev-parse", "HEAD").strip() == commit_a

    assert cli("generate", "--scenario", "strong").exit_code == 0
    assert cli("monitor").exit_code == 0
    assert cli("version").exit_code == 0
    batch_b = sha(repo / BATCH)
    assert batch_b != batch_a

    listed = json.loads(cli("versions", "list", "--format", "json").output)
    assert [v["sha256"] for v in listed] == [batch_b, batch_a]
    assert float(listed[1]["drift_score"]) == pytest.approx(0.1875)
    table = cli("versions", "list").output
    assert commit_a[:12] in table and "0.1875" in table

    result = cli("versions", "restore", commit_a[:10])
    assert result.exit_code == 0, result.output
    assert sha(repo / BATCH) == batch_a
    assert git(repo, "status", "--porcelain", "--", "*.dvc") == ""  # git untouched
    result = cli("versions", "restore", "nope")
    assert result.exit_code == 2 and "unknown revision 'nope'" in result.output


def test_a_fresh_clone_pulls_the_batch_from_the_remote(repo, cli, tmp_path):
    cli("dvc-setup")
    cli("generate")
    cli("monitor")
    cli("version")
    first = git(repo, "rev-parse", "HEAD").strip()
    batch_a = sha(repo / BATCH)
    cli("generate", "--scenario", "strong")
    cli("monitor")
    cli("version")
    batch_b = sha(repo / BATCH)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    # the remote is the original workspace's dvc_storage (a relative path in the config)
    remote = repo / "dvc_storage"
    subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "modify", "--local", "local_storage", "url", str(remote)],
        cwd=clone,
        check=True,
    )
    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=clone, check=True)
    assert sha(clone / BATCH) == batch_b
    done = subprocess.run(
        [*CHURNOPS, "versions", "restore", first, "-o", "old.csv"], cwd=clone, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert sha(clone / "old.csv") == batch_a


def test_version_needs_git_and_an_identity(bank_workspace, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "none"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    cli("generate")
    result = cli("version")
    assert result.exit_code == 2
    assert "not inside a git repository: run 'git init' there first" in result.output
    assert len(result.output.strip().splitlines()) == 1
    git(bank_workspace, "init", "-q")
    result = cli("version")
    assert result.exit_code == 2 and "git has no user.name" in result.output
    git(bank_workspace, "config", "user.name", "T")
    git(bank_workspace, "config", "user.email", "t@e")
    result = cli("version")
    assert result.exit_code == 2 and "run 'churnops dvc-setup' first" in result.output


def summary(workspace: Path) -> dict:
    return json.loads((workspace / "monitoring" / "pipeline_summary.json").read_text())


def test_pipeline_drift_is_unstable_and_versioned_no_drift_is_success(repo, cli):
    cli("dvc-setup")
    cli("generate")
    result = cli("pipeline")
    assert result.exit_code == 0, result.output
    assert "Stage 1: Data Drift Monitoring" in result.output and "Pipeline UNSTABLE" in result.output
    report = summary(repo)
    assert report["status"] == "UNSTABLE" and report["drift_detected"] is True
    statuses = {s["name"]: s["status"] for s in report["stages"]}
    assert statuses == {
        "Data Drift Monitoring": "success",
        "Check Data Drift": "unstable",
        "DVC Versioning": "success",
        "Notification": "success",
        "Retraining": "skipped",
    }
    versioning = report["stages"][2]["outputs"]
    assert versioning["pushed"] and versioning["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert any((repo / "dvc_storage").rglob("*")), "the batch was pushed to the local remote"
    html = (repo / "monitoring" / "monitoring_report.html").read_text()
    assert versioning["commit"][:12] in html  # the report knows the batch's DVC version
    assert all(s["duration_s"] >= 0 for s in report["stages"])
    assert cli("pipeline", "--fail-on-drift").exit_code == 3

    head = git(repo, "rev-parse", "HEAD")
    cli("generate", "--intensity", "0")
    result = cli("pipeline", "--fail-on-drift")
    assert result.exit_code == 0, result.output
    assert "Pipeline SUCCESS" in result.output
    report = summary(repo)
    assert report["status"] == "SUCCESS"
    assert report["stages"][2]["status"] == "skipped"
    assert git(repo, "rev-parse", "HEAD") == head  # no new version
    assert not (repo / "trigger.txt").exists()


def trailers(root: Path) -> dict[str, str]:
    body = git(root, "log", "-1", "--format=%B")
    return dict(line[len("churnops-") :].split(": ", 1) for line in body.splitlines() if line.startswith("churnops-"))


def test_pipeline_current_versions_the_batch_it_checked(repo, cli, tmp_path_factory):
    """`pipeline -p FILE` versions FILE's bytes - not whatever paths.production held - even from
    outside the repository: they are copied to paths.production, where `versions list` finds them."""
    cli("dvc-setup")
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "night.csv"
    assert cli("generate", "--scenario", "strong", "-o", str(elsewhere)).exit_code == 0
    assert cli("generate", "--intensity", "0").exit_code == 0  # paths.production: another, calm batch
    result = cli("pipeline", "-p", str(elsewhere))
    assert result.exit_code == 0, result.output
    report = summary(repo)
    assert report["drift_detected"] is True
    versioning = report["stages"][2]
    assert versioning["status"] == "success" and versioning["outputs"]["new_version"] is True
    assert str(BATCH) in versioning["detail"] and f"copied from {elsewhere}" in versioning["detail"], versioning
    assert sha(repo / BATCH) == sha(elsewhere)  # the versioned file holds the checked batch
    facts = trailers(repo)
    assert facts["sha256"] == sha(elsewhere) and facts["run-id"] == report["run_id"]
    assert not (repo / BATCH).with_name("bank_churn_prod.meta.json").exists()  # it described the calm batch
    assert "meta.json" not in git(repo, "status", "--porcelain")  # and its removal is in the version's commit
    listed = json.loads(cli("versions", "list", "--format", "json").output)
    assert listed[0]["sha256"] == sha(elsewhere)

    result = cli("pipeline", "-p", str(elsewhere))  # the same batch again: said, and no new commit
    assert result.exit_code == 0, result.output
    assert f"{BATCH} (copied from {elsewhere}) is already versioned" in summary(repo)["stages"][2]["detail"]

    # a Parquet batch is not copied into the .csv versions are kept at (it broke every later run)
    import polars as pl

    parquet = elsewhere.with_suffix(".parquet")
    pl.read_csv(elsewhere).write_parquet(parquet)
    head = git(repo, "rev-parse", "HEAD")
    result = cli("pipeline", "-p", str(parquet))
    assert result.exit_code == 4, result.output
    assert "checked a parquet file, but versions are kept at" in json.dumps(summary(repo)["stages"][2]), summary(repo)
    assert git(repo, "rev-parse", "HEAD") == head and sha(repo / BATCH) == sha(elsewhere)


def test_pipeline_never_replaces_a_batch_dvc_does_not_keep(repo, cli, tmp_path_factory):
    """`init -p mine.csv` makes mine.csv paths.production; `pipeline -p other.csv` then copied
    other.csv over it before versioning - the user's own batch lost, never versioned (and without a
    git repository, lost before the stage failed). A file there that DVC does not keep is never
    replaced; once versioned, it is (DVC keeps it: restorable)."""
    from churnops.data.production import meta_path_for

    elsewhere = tmp_path_factory.mktemp("elsewhere") / "night.csv"
    assert cli("generate", "--scenario", "strong", "-o", str(elsewhere)).exit_code == 0
    assert cli("generate", "--intensity", "0").exit_code == 0
    meta_path_for(repo / BATCH).unlink()  # the user's own batch: nothing says churnops made it
    own = sha(repo / BATCH)
    result = cli("pipeline", "-p", str(elsewhere))  # DVC not set up yet: nothing copied either
    assert result.exit_code == 4 and "DVC is not set up" in json.dumps(summary(repo)["stages"][2]), result.output
    assert sha(repo / BATCH) == own
    cli("dvc-setup")
    head = git(repo, "rev-parse", "HEAD")
    result = cli("pipeline", "-p", str(elsewhere))
    assert result.exit_code == 4, result.output
    stage = summary(repo)["stages"][2]
    assert stage["status"] == "failed" and "would replace a file that DVC does not keep" in json.dumps(stage), stage
    assert sha(repo / BATCH) == own and git(repo, "rev-parse", "HEAD") == head
    # recorded but not kept: 'dvc add --no-commit' writes the md5 and never stores the bytes
    done = subprocess.run([sys.executable, "-m", "dvc", "add", "--no-commit", "-q", str(BATCH)], cwd=repo,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = cli("pipeline", "-p", str(elsewhere))
    assert result.exit_code == 4 and sha(repo / BATCH) == own, result.output
    assert "would replace a file that DVC does not keep" in json.dumps(summary(repo)["stages"][2])
    assert cli("version").exit_code == 0  # versioned: DVC keeps it
    result = cli("pipeline", "-p", str(elsewhere))
    assert result.exit_code == 0 and summary(repo)["stages"][2]["status"] == "success", result.output
    assert sha(repo / BATCH) == sha(elsewhere)
    listed = json.loads(cli("versions", "list", "--format", "json").output)
    assert [version["sha256"] for version in listed[:2]] == [sha(elsewhere), own]


def test_a_batch_changed_after_its_check_is_not_versioned_under_the_run(repo, cli):
    from churnops.config import load_config
    from churnops.errors import InputDataError
    from churnops.pipeline.versioning import version_checked_batch

    cli("dvc-setup")
    cli("generate")
    assert cli("monitor").exit_code == 0
    metrics = json.loads((repo / "monitoring" / "monitoring_metrics.json").read_text())
    head = git(repo, "rev-parse", "HEAD")
    with (repo / BATCH).open("a") as batch:
        batch.write((repo / BATCH).read_text().splitlines()[-1] + "\n")
    with pytest.raises(InputDataError, match="changed since run .* checked it"):
        version_checked_batch(load_config(), repo / BATCH, metrics)
    assert git(repo, "rev-parse", "HEAD") == head


def test_a_failing_dvc_stage_keeps_the_monitoring_outputs(repo, cli):
    remote = repo.parent / f"{repo.name}-remote"
    assert cli("dvc-setup", "--remote", str(remote)).exit_code == 0
    remote.write_text("not a folder: every push fails")  # a broken remote (permissions do not stop root)
    cli("generate")
    result = cli("pipeline")
    assert result.exit_code == 4, result.output
    report = summary(repo)
    assert report["status"] == "FAILURE"
    assert report["stages"][0]["status"] == "success"
    assert report["stages"][2]["status"] == "failed" and "dvc push failed" in report["stages"][2]["error"]
    assert report["stages"][3]["status"] == "success"  # the error notification was delivered
    assert report["stages"][3]["detail"] == (  # no channel: said, not 'sent'
        "error notification written to monitoring/notification.txt only: no channel is set up "
        "([notify] channels: e-mail, Slack, Teams, webhooks)"
    ), report["stages"][3]
    assert "DVC Versioning" in (repo / "monitoring" / "notification.txt").read_text()
    for name in ("monitoring_metrics.json", "monitoring_report.html", "report.css"):
        assert (repo / "monitoring" / name).stat().st_size > 0
    assert (repo / "trigger.txt").exists()


def test_bad_input_in_the_pipeline_is_exit_2(repo, cli):
    result = cli("pipeline")
    assert result.exit_code == 2
    assert "file not found" in result.output
    report = summary(repo)
    assert report["stages"][0]["status"] == "failed" and report["stages"][3]["outputs"]["status"] == "error"


def test_a_failed_run_says_whose_outputs_still_stand(repo):
    """A failed run changes no output, so a trigger.txt left by the last run still stands: the error
    says whose outputs they are (monitor after its error line, pipeline on its Monitoring stage) -
    a job or a person reading trigger.txt took the last run's alert for tonight's."""
    from churnops.config import load_config
    from churnops.pipeline.workspace import outputs_stamp, standing_outputs

    broken = repo / "broken.csv"
    broken.write_text("a,b\n1,2\n")
    done = subprocess.run([*CHURNOPS, "monitor", "-p", str(broken)], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 2 and "note:" not in done.stdout + done.stderr, done.stderr  # nothing stood before
    assert subprocess.run([*CHURNOPS, "-q", "generate"], cwd=repo, capture_output=True).returncode == 0
    assert subprocess.run([*CHURNOPS, "-q", "monitor"], cwd=repo, capture_output=True).returncode == 0
    metrics = repo / "monitoring" / "monitoring_metrics.json"
    before, run_id = sha(metrics), json.loads(metrics.read_text())["run_id"]
    assert (repo / "trigger.txt").exists()

    done = subprocess.run([*CHURNOPS, "monitor", "-p", str(broken)], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("error: ")]  # one line
    note = done.stdout.strip().splitlines()[-1]  # and, on stdout, whose outputs still stand
    assert "broken.csv" in error and done.stderr.strip().endswith(error)
    assert note.startswith("note: the outputs (monitoring/, trigger.txt) are still those of the last complete run")
    assert f"{run_id} of " in note and "UTC (alert; its trigger.txt stands): this run changed none of them" in note
    assert sha(metrics) == before

    done = subprocess.run([*CHURNOPS, "pipeline", "-p", str(broken)], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "FAILED in" in done.stdout and f"still those of the last complete run, {run_id}" in done.stdout
    summary = json.loads((repo / "monitoring" / "pipeline_summary.json").read_text())
    assert summary["status"] == "FAILURE" and run_id in summary["stages"][0]["detail"]
    told = (repo / "monitoring" / "notification.txt").read_text()  # the team is told too
    assert "broken.csv" in told and f"still those of the last complete run, {run_id}" in told
    assert sha(metrics) == before

    config = load_config(repo)
    stamp = outputs_stamp(config)
    assert f"{run_id} of " in standing_outputs(config, stamp)
    (repo / "trigger.txt").unlink()
    assert "(alert)" in standing_outputs(config, stamp)
    metrics.write_text(metrics.read_text() + "\n")  # the run wrote them after all: not the last run's
    assert standing_outputs(config, stamp) is None


def test_an_output_inside_a_dvc_remote_set_outside_the_configuration_is_refused(repo):
    """A remote set with dvc-setup --remote (or dvc remote add) lives in .dvc/config only: a file
    channel inside it appended to a stored version of a batch. Refused like dvc.remote_url."""
    done = subprocess.run(
        [*CHURNOPS, "-q", "dvc-setup", "--remote", "./store2"], cwd=repo, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "store2" in (repo / ".dvc" / "config").read_text()  # DVC wrote it, relative to .dvc/
    local = repo / ".dvc" / "config.local"
    local.write_text(
        f"['remote \"mine\"']\n    url = {repo / 'elsewhere'}\n['remote \"s3\"']\n    url = s3://b/store3\n"
    )
    assert subprocess.run([*CHURNOPS, "-q", "generate"], cwd=repo, capture_output=True).returncode == 0
    for path, named in (
        ("store2/files/md5/f0/2760fe", 'the DVC remote "'),
        ("elsewhere/x.log", 'the DVC remote "mine" of .dvc/config.local'),
    ):
        done = subprocess.run(
            [*CHURNOPS, "monitor", "--set", f"notify.channels=[{{type='file', path='{path}'}}]"],
            cwd=repo,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2 and named in done.stderr and "where DVC keeps the versions" in done.stderr, (
            done.stderr
        )
        assert not (repo / "monitoring" / "monitoring_metrics.json").exists()
    done = subprocess.run(
        [*CHURNOPS, "-q", "monitor", "--set", "notify.channels=[{type='file', path='store3/x.log'}]"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr  # a folder named like a remote on a server is no remote


HOLDER = (
    "import fcntl, sys; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
    "f.write('pid test'); f.flush(); print('locked', flush=True); sys.stdin.readline()"
)


def hold_workspace(root: Path) -> subprocess.Popen:
    """Another process holding the workspace lock until a line is written to its stdin."""
    lock = root / "monitoring" / ".workspace.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


@pytest.mark.parametrize("command", ["pipeline", "monitor"])
def test_two_runs_never_interleave(repo, command):
    """A second run waits for the one holding the workspace: it says so, and runs once released.

    Event-driven: the holder keeps the lock until the waiting run has printed that it waits.
    """
    assert subprocess.run([*CHURNOPS, "-q", "generate"], cwd=repo, capture_output=True).returncode == 0
    holder = hold_workspace(repo)
    try:
        done = subprocess.run([*CHURNOPS, command, "--no-wait"], cwd=repo, capture_output=True, text=True)
        assert done.returncode == 2, done.stderr
        assert "another churnops run holds" in done.stderr and "--no-wait" in done.stderr
        assert "pid test" in done.stderr
        waiting = subprocess.Popen(
            [*CHURNOPS, command], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        first = waiting.stderr.readline()  # blocks until the run reports that it waits
        assert first.startswith("waiting: another churnops run holds"), first
        assert not (repo / "monitoring" / "monitoring_metrics.json").exists()  # nothing ran meanwhile
    finally:
        holder.stdin.write("release\n")
        holder.stdin.flush()
        holder.wait()
    out, err = waiting.communicate()
    assert waiting.returncode in (0, 4), err  # ran once released (no DVC set up here: stage 3 may fail)
    assert (repo / "monitoring" / "monitoring_metrics.json").exists()


def test_demo_is_self_contained_and_idempotent(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "none"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    outer = tmp_path / "outer"
    outer.mkdir()
    git(outer, "init", "-q")
    done = subprocess.run([*CHURNOPS, "demo", "demo"], cwd=outer, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Pipeline UNSTABLE" in done.stdout
    demo = outer / "demo"
    assert (demo / ".git").is_dir() and (demo / "dvc_storage").is_dir()
    assert subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=outer, capture_output=True).returncode != 0
    # what `churnops train` then creates there (MLflow's registry and artifacts) is ignored too
    for name in ("mlflow.db", "mlflow.db-journal", "mlartifacts/1/abc/artifacts/model/MLmodel"):
        (demo / name).parent.mkdir(parents=True, exist_ok=True)
        (demo / name).write_text("x")
    assert git(demo, "status", "--porcelain", "--untracked-files=all") == ""
    commits = git(demo, "rev-list", "--count", "HEAD")
    done = subprocess.run([*CHURNOPS, "demo", "demo"], cwd=outer, capture_output=True, text=True)
    assert done.returncode == 0
    assert git(demo, "rev-list", "--count", "HEAD") == commits


def test_demo_refuses_a_folder_holding_your_own_project(tmp_path):
    """The demo writes generated data through the folder's paths: never into someone's project."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "churnops.toml").write_text('[paths]\nreference = "reference.csv"\n')
    (project / "reference.csv").write_text("customer_id,balance\n1,10.5\n")
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    done = subprocess.run([*CHURNOPS, "demo", "project"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not a demo workspace" in done.stderr and "--force" in done.stderr, done.stderr
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before
    assert not (project / ".git").exists()
    victim = tmp_path / "victim.csv"
    victim.write_text("customer_id,balance\n1,10.5\n")
    for key in ("paths.reference", "paths.production"):
        done = subprocess.run(
            [*CHURNOPS, "demo", "fresh", "--set", f"{key}='{victim}'"], cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 2 and "outside the demo folder" in done.stderr, done.stderr
        assert victim.read_text() == "customer_id,balance\n1,10.5\n"


def test_seed_dvc_setup_script(repo):
    script = Path(__file__).resolve().parents[1] / "dvc_setup.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", str(script)], cwd=repo, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert (repo / ".dvc" / "config").is_file()


def test_dvc_says_nothing_of_its_own_and_no_remote_secret(repo, cli):
    """DVC runs in churnops' process: its log lines (from dvc_data and friends too), spinners and
    progress bars stay off the terminal, and a token in the remote's URL - which DVC's transfer
    errors repeat - is never printed; the error is churnops' one line."""
    import http.server
    import threading

    class Deny(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _deny(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            elif self.headers.get("Transfer-Encoding") == "chunked":
                while size := int(self.rfile.readline().strip() or b"0", 16):
                    self.rfile.read(size + 2)
                self.rfile.readline()
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_HEAD = _deny  # noqa: N815

        def log_message(self, format, *args):  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Deny)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = f"http://127.0.0.1:{server.server_address[1]}/store?token=TOKSECRET&sig=SIGSECRET"
        assert cli("dvc-setup", "--remote", remote).exit_code == 0
        cli("generate")
        done = subprocess.run(
            [sys.executable, "-m", "churnops", "version"], cwd=repo, capture_output=True, text=True, timeout=300
        )
    finally:
        server.shutdown()
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "SECRET" not in said
    assert "dvc push failed" in said and "ERROR" not in said and "Checking graph" not in said
