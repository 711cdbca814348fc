"""Hostile configuration: values, keys and paths that must give one line and exit 2, never a crash,
a lost file or a write outside the project.

Each case runs the real CLI in its own process against a small workspace whose outputs must be
byte-identical afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from run_outputs import snapshot

CHURNOPS = [sys.executable, "-m", "churnops"]


def churnops(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHURNOPS_DEBUG": ""}
    return subprocess.run([*CHURNOPS, *args], cwd=root, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def base(tmp_path_factory, bank) -> Path:
    root = tmp_path_factory.mktemp("config")
    (root / "data").mkdir()
    bank.head(4000).write_csv(root / "data" / "churn.csv")
    assert churnops(root, "generate", "--rows", "2000:4000").returncode == 0
    done = churnops(root, "monitor", "--reference-rows", "0:2000")
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture()
def ws(base, tmp_path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(base, root)
    return root


def assert_one_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


BAD_SETS = {
    "NaN dataset threshold": ("thresholds.dataset_drift=nan", "finite"),
    "infinite column threshold": ("thresholds.column_drift=inf", "finite"),
    "negative drift threshold": ("drift.threshold=-0.5", "greater than or equal to 0"),
    "NaN per-column threshold": ("drift.per_column_threshold={Balance=nan}", "finite"),
    "NaN domain": ('columns.domains={"Credit Score"=[nan, 850]}', "finite"),
    "reversed domain": ('columns.domains={"Credit Score"=[850, 300]}', "max 300"),
    "infinite intensity": ("scenario.intensity=inf", "finite"),
    "absurd intensity": ("scenario.intensity=1e9", "less than or equal to 100"),
    "negative seed": ("data.seed=-1", "greater than or equal to 0"),
    "seed too large for NumPy": ("model.seed=99999999999999999999", "less than or equal to"),
    "NaN scenario factor": ('scenario.custom={x=[{op="scale", column="Balance", factor=nan}]}', "finite"),
    "negative timeout": ("pipeline.lock_timeout_s=-1", "greater than or equal to 0"),
    "unknown encoding": ("data.encoding='klingon'", "unknown text encoding"),
    "a codec that is not a text encoding": ("data.encoding='rot13'", "encoding"),
    "a non-ASCII-compatible encoding": ("data.encoding='utf-16'", "ASCII-compatible"),
    "two-character separator": ("data.separator=';;'", "one character"),
    "a column with two roles": ("columns.ignored=['Balance'] ", "numerical"),
    "a section given a value": ("paths=3", "paths"),
    "a key under a value": ("thresholds.dataset_drift.x=1", "thresholds.dataset_drift"),
    "line break in the subject": ('notify.subject_prefix="a\\nBcc: x"', "control characters"),
    "unknown trigger signal": ("thresholds.trigger_on=['weather']", "trigger_on"),
}


@pytest.mark.parametrize("case", list(BAD_SETS))
def test_bad_values_are_one_line_and_exit_2(ws, case):
    setting, expected = BAD_SETS[case]
    before = snapshot(ws)
    args = ["monitor", "--reference-rows", "0:2000", "--set", setting]
    if case == "a column with two roles":
        args += ["--set", "columns.numerical=['Balance']"]
    assert_one_line(churnops(ws, *args), expected)
    assert snapshot(ws) == before


PATHS = {
    # where MLflow keeps the models and DVC the versions: a file channel appended to a model's MLmodel
    "a channel inside the model artifacts": (
        "notify.channels=[{type='file', path='mlartifacts/models/m-1/artifacts/MLmodel'}]",
        "is inside model.artifact_dir",
    ),
    "a channel inside the DVC remote": (
        "notify.channels=[{type='file', path='dvc_storage/files/md5/f0/2760fe'}]",
        "is inside dvc.remote_url",
    ),
    "the trigger inside the model artifacts": ("paths.trigger='mlartifacts/trigger.txt'", "where MLflow keeps"),
    "the profile cache inside the DVC remote": (
        "paths.profile_cache='dvc_storage/profiles'",
        "is inside dvc.remote_url",
    ),
    "trigger is the reference data": ("paths.trigger='data/churn.csv'", "is the same file as paths.reference"),
    "trigger is the metrics": ("paths.trigger='monitoring/monitoring_metrics.json'", "is the same file"),
    # the commit's journal, deleted once the outputs are in place: the trigger went with it
    "trigger is the outputs journal": ("paths.trigger='monitoring/.outputs-commit.json'", "is the same file"),
    "trigger is the batch": (
        "paths.trigger='data/production/bank_churn_prod.csv'",
        "is the same file as paths.production",
    ),
    "monitoring folder holds the data": ("paths.monitoring_dir='data'", None),
    "tilde": ("paths.trigger='~/trigger.txt'", "'~'"),
    "relative path leaving the project": ("paths.trigger='../../trigger.txt'", "leaves the project folder"),
    "relative sqlite history leaving the project": ("history.url='sqlite:///../../h.db'", "leaves the project"),
    "relative tracking store leaving the project": ("model.tracking_uri='sqlite:///../m.db'", "leaves the project"),
    "notification log over the data": (
        'notify.channels=[{type="file", path="data/churn.csv"}]',
        "is the same file as paths.reference",
    ),
    "profile cache around the data": ("paths.profile_cache='data'", "profile_cache"),
    "a path that names no file": ("paths.trigger='..'", "does not name a file"),
}


def test_an_mlflow_store_named_in_the_environment_is_checked_like_the_setting(ws, monkeypatch):
    """model.tracking_uri naming the history database is refused; MLFLOW_TRACKING_URI, which wins
    over it, was not checked: MLflow wrote its tables into history.db and the run failed."""
    assert churnops(ws, "monitor", "--reference-rows", "0:2000").returncode == 0  # history.db made
    before = snapshot(ws)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///monitoring/history.db")
    done = churnops(ws, "train")
    assert_one_line(done, "model.tracking_uri (MLFLOW_TRACKING_URI) is the same file as history database")
    assert snapshot(ws) == before


@pytest.mark.parametrize("case", list(PATHS))
def test_paths_that_would_lose_data_or_leave_the_project_are_refused(ws, case):
    setting, expected = PATHS[case]
    data = (ws / "data" / "churn.csv").read_bytes()
    batch = (ws / "data" / "production" / "bank_churn_prod.csv").read_bytes()
    before = snapshot(ws)
    done = churnops(ws, "monitor", "--reference-rows", "0:2000", "--set", setting)
    if expected is None:  # allowed, and nothing is lost
        assert done.returncode == 0, done.stderr
    else:
        assert_one_line(done, expected)
        assert snapshot(ws) == before
    assert (ws / "data" / "churn.csv").read_bytes() == data
    assert (ws / "data" / "production" / "bank_churn_prod.csv").read_bytes() == batch
    assert not (ws.parent.parent / "trigger.txt").exists() and not (ws.parent / "m.db").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["generate", "--output", "data/churn.csv"], "paths.production is the same file as paths.reference"),
        (["data", "init", "--output", "data/production/bank_churn_prod.csv"], "is the same file as paths.production"),
        (
            ["monitor", "--current", "trigger.txt", "--reference-rows", "0:2000"],
            "paths.trigger is the same file as --current",
        ),
    ],
)
def test_command_line_paths_that_collide_are_refused(ws, args, expected):
    data = (ws / "data" / "churn.csv").read_bytes()
    (ws / "trigger.txt").write_text("x") if not (ws / "trigger.txt").exists() else None
    assert_one_line(churnops(ws, *args), expected)
    assert (ws / "data" / "churn.csv").read_bytes() == data


def test_toml_that_nests_without_end_is_one_line(ws):
    (ws / "churnops.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert_one_line(churnops(ws, "monitor"), "churnops.toml", "nested")


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\xff\xfe[thresholds]\n", "not UTF-8"),
        (b"\xef\xbb\xbf[thresholds]\ndataset_drift = 0.2\n", None),  # a BOM is fine
        (b"[thresholds]\ndataset_drift = 0.2\n" + b"# padding\n" * 200_000, "larger than"),
    ],
)
def test_odd_configuration_files(ws, content, expected):
    (ws / "churnops.toml").write_bytes(content)
    done = churnops(ws, "config", "show")
    if expected is None:
        assert done.returncode == 0 and "dataset_drift = 0.2" in done.stdout, done.stderr
    else:
        assert_one_line(done, expected)


@pytest.mark.parametrize("where", ["--config", "--current", "--reference"])
def test_a_folder_where_a_file_is_expected_is_one_line(ws, where):
    (ws / "folder").mkdir()
    args = ["monitor", where, "folder"] if where != "--config" else ["monitor", "--config", "folder"]
    line = assert_one_line(churnops(ws, *args))
    assert "folder" in line and ("directory" in line.lower() or "is a folder, not a file" in line)


@pytest.mark.parametrize(
    "args",
    [
        ["monitor", "--jobs", "-1"],
        ["monitor", "--engine", "magic"],
        ["monitor", "--mode", "fast"],
        ["monitor", "--reference-rows", "10:5"],
        ["generate", "--intensity", "inf"],
        ["generate", "--rows", "x:y"],
        ["history", "--since", "yesterday"],
        ["history", "--format", "xml"],
        ["notify", "--status", "panic"],
        ["data", "init", "--rows", "0"],
        ["data", "init", "--seed", "-5"],
        ["monitor", "--no-such-flag"],
        ["no-such-command"],
    ],
)
def test_bad_flags_are_one_line_and_exit_2(ws, args):
    before = snapshot(ws)
    assert_one_line(churnops(ws, *args))
    assert snapshot(ws) == before


def test_global_options_work_after_the_subcommand(ws):
    quiet = churnops(ws, "monitor", "--reference-rows", "0:2000", "-q")
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stdout
    verbose = churnops(ws, "monitor", "--reference-rows", "0:2000", "--verbose")
    assert verbose.returncode == 0 and "DEBUG:" in verbose.stderr


def _digests(*paths: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in paths}


@pytest.mark.parametrize(
    "trigger",
    ["data/linked.csv", "churnops.toml", ".git/config", "data/production/bank_churn_prod.meta.json"],
    ids=["a-symbolic-link-to-the-reference", "the-configuration", "inside-git", "the-batch-sidecar"],
)
def test_an_output_on_a_file_churnops_reads_or_does_not_own_is_refused(ws, trigger):
    """The reference reached through a link, the configuration, a .git folder, a batch's .meta.json."""
    (ws / "data" / "linked.csv").symlink_to(ws / "data" / "churn.csv")
    (ws / ".git").mkdir(exist_ok=True)
    (ws / ".git" / "config").write_text("[core]\n")
    (ws / "churnops.toml").write_text('[paths]\nreference = "data/linked.csv"\n')
    kept = _digests(ws / "data" / "churn.csv", ws / "churnops.toml", ws / ".git" / "config")
    done = churnops(ws, "monitor", "--reference-rows", "0:2000", "--set", f"paths.trigger={trigger!r}")
    assert_one_line(done, "paths.trigger")
    assert _digests(*kept) == kept


def test_predict_never_writes_over_its_input_through_a_link(ws):
    (ws / "data" / "alias.csv").symlink_to(ws / "data" / "production" / "bank_churn_prod.csv")
    kept = _digests(ws / "data" / "production" / "bank_churn_prod.csv")
    done = churnops(ws, "predict", "-i", "data/alias.csv", "-o", "data/production/bank_churn_prod.csv")
    assert_one_line(done, "same file")
    assert _digests(*kept) == kept


def test_a_hard_link_at_the_lock_is_never_written_through(ws, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lock = ws / "monitoring" / ".workspace.lock"
    lock.unlink(missing_ok=True)
    os.link(victim, lock)
    done = churnops(ws, "monitor", "--reference-rows", "0:2000")
    assert_one_line(done, "hard link")
    assert victim.read_text() == "precious\n"


def test_an_export_or_a_batch_never_replaces_a_file_churnops_did_not_write(ws, tmp_path):
    """`history -o` wrote over a batch's .dvc record (its version gone), .gitignore and anyone's
    notes; `generate -o` over anyone's table. A record of git's or DVC's is never an output; a
    file that does not read like the command's own output is replaced only with --force."""
    assert churnops(ws, "monitor", "--reference-rows", "0:2000").returncode in (0, 1)
    notes, table = tmp_path / "notes.txt", ws / "data" / "mine.csv"
    notes.write_text("precious\n")
    table.write_text("a,b\n1,2\n")
    (ws / "data" / "production" / "bank_churn_prod.csv.dvc").write_text("outs:\n- md5: 0123\n")
    (ws / ".gitignore").write_text("/data/\n")
    kept = _digests(notes, table, ws / "data" / "production" / "bank_churn_prod.csv.dvc", ws / ".gitignore")
    for record in ("data/production/bank_churn_prod.csv.dvc", ".gitignore", "dvc.lock", "DVC.LOCK", "sub/.git"):
        for force in ([], ["--force"]):
            done = churnops(ws, "history", "--format", "csv", "-o", record, *force)
            assert_one_line(done, f"names a file git, DVC or your configuration keep ({Path(record).name})")
    (ws / ".dvc").mkdir()
    (ws / "dd").symlink_to(".dvc")  # a folder reached through a link is the folder it leads to
    done = churnops(ws, "history", "--format", "csv", "-o", "dd/config.local", "--force")
    assert_one_line(done, "is inside a .dvc folder, which churnops never writes to")
    assert not (ws / ".dvc" / "config.local").exists()
    done = churnops(ws, "history", "--format", "csv", "-o", str(notes))
    assert_one_line(done, f"--output {notes}: a file is there that does not read like a history export", "--force")
    done = churnops(ws, "generate", "--rows", "2000:4000", "-o", "data/mine.csv")
    assert_one_line(done, "a file is there that churnops did not generate and DVC does not keep", "--force")
    assert _digests(*kept) == kept
    for output_format in ("csv", "json", "table"):  # its own export is replaced, run after run
        for _ in range(2):
            done = churnops(ws, "history", "--format", output_format, "-o", f"runs.{output_format}")
            assert done.returncode == 0, done.stderr
    assert (ws / "runs.csv").read_text().startswith("created_at,run_id,")
    assert churnops(ws, "generate", "--rows", "2000:4000", "--seed", "5").returncode == 0  # its own: made again
    assert churnops(ws, "history", "--format", "csv", "-o", str(notes), "--force").returncode == 0
    assert notes.read_text().startswith("created_at,run_id,")
    assert churnops(ws, "generate", "--rows", "2000:4000", "-o", "data/mine.csv", "--force").returncode == 0
    assert table.read_text().startswith("CustomerId,")


def test_init_never_writes_through_a_name_planted_beside_its_output(ws, tmp_path):
    """init tried its configuration from '.churnops.toml.check' beside it, opened as any name:
    a link planted there made it overwrite the file the link names, then removed the link."""
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file\n")
    planted = ws / ".churnops.toml.check"
    planted.symlink_to(victim)
    done = churnops(ws, "init", "-r", "data/churn.csv")
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "someone else's file\n"
    assert planted.is_symlink()  # not removed: churnops did not make it
    assert not [p for p in ws.iterdir() if p.name.endswith(".check") and p != planted]  # its own trial file is gone


def test_init_takes_names_with_control_characters_and_refuses_a_line_break_in_one_line(ws):
    import csv

    with (ws / "data" / "churn.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))[:400]
    rows[0][3] = "Na\x1bme"  # an escape character: written escaped, the configuration loads
    with (ws / "esc.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    done = churnops(ws, "init", "-r", "esc.csv", "-o", "esc.toml")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in (ws / "esc.toml").read_text()
    assert churnops(ws, "config", "show", "-c", "esc.toml").returncode == 0
    rows[0][4] = "Gen\rder"  # a carriage return alone inside a name
    with (ws / "cr.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    # the file's lines end with \r\n: not "old Mac text", whose advice (tr '\r' '\n') would break it
    assert_one_line(
        churnops(ws, "init", "-r", "cr.csv", "-o", "cr.toml"),
        "cr.csv: a column name in the header holds a carriage return",
    )
    assert not (ws / "cr.toml").exists()
