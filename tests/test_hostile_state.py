"""Hostile state on disk: files churnops reads back (its journal, lock, caches, metrics, history)
planted or tampered with by someone who can write into the workspace.

The rule: nothing on disk makes churnops delete or overwrite a file it does not own, follow a
link, or crash; a bad file is ignored and rebuilt (with a warning) or refused in one line (exit
2). Every case runs the real CLI in its own process.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from cache_files import resign
from run_outputs import snapshot

from churnops.pipeline.inference import INFERENCE_FORMAT

CHURNOPS = [sys.executable, "-m", "churnops"]
VICTIM_TEXT = "precious data, not churnops'\n"


def churnops(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHURNOPS_DEBUG": ""}
    return subprocess.run([*CHURNOPS, *args], cwd=root, capture_output=True, text=True, env=env, timeout=600)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def base(tmp_path_factory, bank) -> Path:
    """A small workspace after one drifted run."""
    root = tmp_path_factory.mktemp("state")
    (root / "data").mkdir()
    bank.head(6_000).write_csv(root / "data" / "churn.csv")
    done = churnops(root, "generate", "--rows", "4000:6000")
    assert done.returncode == 0, done.stderr
    done = churnops(root, "monitor", "--reference-rows", "0:4000")
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture()
def ws(base, tmp_path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(base, root, symlinks=True)
    (root / "victim.txt").write_text(VICTIM_TEXT)
    return root


def monitor(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return churnops(root, "monitor", "--reference-rows", "0:4000", *extra)


def journal_entry(path: Path, action: str = "write", staged: str | None = None, backup: str | None = None) -> dict:
    return {"action": action, "path": str(path), "staged": staged, "backup": backup}


def plant_journal(root: Path, entries: list[dict], **fields) -> Path:
    journal = root / "monitoring" / ".outputs-commit.json"
    document = {"format": "churnops-outputs-commit", "version": 2, "run_id": "planted", "history": True}
    document.update(fields)
    document["entries"] = entries
    journal.write_text(json.dumps(document))
    return journal


PLANTED = {
    "remove a file outside the outputs": lambda root: [journal_entry(root / "victim.txt", "remove")],
    "write over a file outside the outputs": lambda root: [
        journal_entry(root / "victim.txt", staged=str(root / ".victim.txt.abc.tmp"))
    ],
    "an output replaced by a file from elsewhere": lambda root: [
        journal_entry(root / "monitoring" / "monitoring_metrics.json", staged=str(root / "victim.txt"))
    ],
    "a staged file with a foreign name": lambda root: [
        journal_entry(root / "monitoring" / "monitoring_metrics.json", staged=str(root / "monitoring" / "stolen.json"))
    ],
    "a backup that is another file": lambda root: [
        journal_entry(root / "trigger.txt", "remove", backup=str(root / "victim.txt"))
    ],
    "a path with ..": lambda root: [journal_entry(root / "monitoring" / ".." / "victim.txt", "remove")],
    "not JSON": None,
    "the wrong format": "other",
}


@pytest.mark.parametrize("case", list(PLANTED))
@pytest.mark.parametrize("command", [["monitor", "--reference-rows", "0:4000"], ["notify", "--dry-run"]])
def test_a_planted_output_journal_is_set_aside_never_applied(ws, case, command):
    make = PLANTED[case]
    journal = ws / "monitoring" / ".outputs-commit.json"
    if case == "not JSON":
        journal.write_text("{ this is not a journal")
    elif case == "the wrong format":
        plant_journal(ws, [journal_entry(ws / "victim.txt", "remove")], format="something-else")
    else:
        (ws / ".victim.txt.abc.tmp").write_text("attacker's content")
        plant_journal(ws, make(ws))
    before = snapshot(ws)
    done = churnops(ws, *command)
    assert done.returncode == 0, done.stderr
    assert "ignored" in done.stderr and "nothing in it was applied" in done.stderr
    assert "Traceback" not in done.stderr
    assert (ws / "victim.txt").read_text() == VICTIM_TEXT
    assert not journal.exists() and list((ws / "monitoring").glob(".outputs-commit.json.rejected-*"))
    if command[0] == "notify":
        assert snapshot(ws) == before
    metrics = json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())
    assert metrics["run_id"] != "planted"


def test_a_symlinked_lock_is_refused_and_its_target_untouched(ws):
    lock = ws / "monitoring" / ".workspace.lock"
    lock.unlink(missing_ok=True)
    lock.symlink_to(ws / "victim.txt")
    before = snapshot(ws)
    line = one_error_line(monitor(ws))
    assert "symbolic link" in line and ".workspace.lock" in line
    assert (ws / "victim.txt").read_text() == VICTIM_TEXT
    assert snapshot(ws) == before


@pytest.mark.parametrize("drift", [True, False])
def test_a_trigger_that_is_a_link_to_the_data_is_replaced_never_followed(ws, drift):
    """A clean run removes the link itself; a drifted run replaces it: the data is never touched."""
    reference = ws / "data" / "churn.csv"
    data = reference.read_bytes()
    trigger = ws / "trigger.txt"
    trigger.unlink(missing_ok=True)
    trigger.symlink_to(reference)
    if drift:
        done = monitor(ws)
    else:
        pl.read_csv(reference).slice(2000, 2000).write_csv(ws / "calm.csv")
        done = churnops(ws, "monitor", "--reference-rows", "0:2000", "--current", "calm.csv")
    assert done.returncode == 0, done.stderr
    assert reference.read_bytes() == data
    assert not trigger.is_symlink()
    assert trigger.exists() == drift


def test_an_output_that_is_a_folder_stops_before_anything_changes(ws):
    trigger = ws / "trigger.txt"
    trigger.unlink()
    before = snapshot(ws)
    trigger.mkdir()
    (trigger / "keep.txt").write_text("mine")
    done = monitor(ws)
    line = one_error_line(done)
    assert "trigger.txt" in line and "folder" in line
    assert "this run changed none of them" in done.stdout and "trigger.txt stands" not in done.stdout  # a folder
    trigger.rename(ws / "trigger.dir")
    assert snapshot(ws) == before
    (ws / "trigger.dir").rename(trigger)
    assert (trigger / "keep.txt").read_text() == "mine"
    assert not (ws / "monitoring" / ".outputs-commit.json").exists()
    assert not list((ws / "monitoring").glob(".*.tmp")) and not list((ws / "monitoring").glob(".*.bak"))
    shutil.rmtree(trigger)
    assert monitor(ws).returncode == 0  # nothing blocks the next run


def _profile_cache(root: Path) -> Path:
    files = sorted((root / ".churnops" / "profiles").glob("*.npz"))
    assert len(files) == 1, files
    return files[0]


def _rewrite_npz(path: Path, change, compress: bool = False) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    manifest = json.loads(bytes(arrays["__manifest__"]).decode())
    change(manifest, arrays)
    arrays["__manifest__"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    with path.open("wb") as handle:
        (np.savez_compressed if compress else np.savez)(handle, **arrays)


def _first(manifest: dict, kind: str) -> int:
    return next(i for i, c in enumerate(manifest["columns"]) if c["sample"] and c["sample"]["kind"] == kind)


CACHE_TAMPERING = {
    "truncated": None,
    "values of another shape": lambda m, a: a.__setitem__(f"values_{_first(m, 'numerical')}", np.zeros((3, 3))),
    "NaN values": lambda m, a: a.__setitem__(f"values_{_first(m, 'numerical')}", np.array([np.nan, 1.0])),
    "unsorted values": lambda m, a: a.__setitem__(f"values_{_first(m, 'numerical')}", np.array([5.0, 1.0, 3.0])),
    "negative weights": lambda m, a: a.__setitem__(
        f"weights_{_first(m, 'numerical')}", -np.ones_like(a.get(f"weights_{_first(m, 'numerical')}", np.ones(1)))
    ),
    "counts not matching labels": lambda m, a: a.__setitem__(f"counts_{_first(m, 'categorical')}", np.ones(99)),
    "labels that are not a list": lambda m, a: m["columns"][_first(m, "categorical")]["sample"].update(labels=7),
    "an unknown role": lambda m, a: m["columns"][0].update(role="admin"),
    "rows of the wrong type": lambda m, a: m.update(rows="many"),
    "a missing column entry": lambda m, a: m["columns"].pop(),
    "strings as numbers": lambda m, a: a.__setitem__(f"values_{_first(m, 'numerical')}", np.array(["a", "b"])),
    "compressed members": "compress",
    "a sample that does not fit its type": lambda m, a: m["columns"][_first(m, "numerical")].update(
        column_type="categorical"
    ),
    "bounds beyond the largest number": lambda m, a: m["columns"][_first(m, "numerical")]["sample"].update(
        bounds=[1e308, 1e308]
    ),
    "labels of mixed types": lambda m, a: m["columns"][_first(m, "categorical")]["sample"]["labels"].__setitem__(0, 1),
    "half-precision values": lambda m, a: a.__setitem__(
        f"values_{_first(m, 'numerical')}", a[f"values_{_first(m, 'numerical')}"].astype(np.float16)
    ),
    "another reference's profile": lambda m, a: m["meta"].update(sha256="0" * 64),
    "a column the reference does not have": lambda m, a: m["columns"].append(
        {**m["columns"][0], "name": "Zzz", "sample": None, "skip_reason": "identifier"}
    ),
    "an array header claiming terabytes": "huge",
}


def _claim_huge(path: Path) -> None:
    """The archive with one array's header claiming 10**13 values (a few bytes stored)."""
    import io
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    name = next(n for n in members if n.startswith("values_"))
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**13,)})
    members[name] = np.lib.format.magic(2, 0) + header.getvalue() + bytes(16)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)


@pytest.mark.parametrize("case", list(CACHE_TAMPERING))
def test_a_tampered_profile_cache_is_ignored_and_rebuilt(ws, case):
    expected = json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())
    cache = _profile_cache(ws)
    change = CACHE_TAMPERING[case]
    if change is None:
        cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    elif change == "compress":
        _rewrite_npz(cache, lambda m, a: None, compress=True)
    elif change == "huge":
        _claim_huge(cache)
    else:
        _rewrite_npz(cache, change)
    resign(cache)
    done = monitor(ws)
    assert done.returncode == 0, done.stderr
    assert "ignoring unusable profile cache" in done.stderr or "ignoring profile cache" in done.stderr, done.stderr
    metrics = json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())
    assert metrics["dataset_drift"] == expected["dataset_drift"]
    assert metrics["outputs"]["profile_cache"] == "miss"
    again = monitor(ws)  # rebuilt: the next run uses the cache again
    assert "ignoring" not in again.stderr
    assert json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())["outputs"]["profile_cache"] == "hit"


def _column_cache(root: Path) -> Path:
    files = sorted((root / ".churnops" / "profiles").glob("*.columns.json"))
    assert len(files) == 1, files
    return files[0]


def _column_document(**changes: object) -> str:
    return json.dumps(
        {"format": INFERENCE_FORMAT, "dates": [], "ids": [], "formats": {}, "commas": [], "strays": [], "points": []}
        | {"scales": [], "codes": [], "free_codes": [], "near": []}
        | changes
    )


COLUMN_CACHE_TAMPERING = {
    "not JSON": lambda path: path.write_text("{"),
    "another document": lambda path: path.write_text(json.dumps({"hello": "world"})),
    "a column not in the reference": lambda path: path.write_text(_column_document(dates=["Nope"])),
    "a column the configuration lists": lambda path: path.write_text(_column_document(ids=["Surname"])),
    "a column twice": lambda path: path.write_text(_column_document(dates=["Balance"], ids=["Balance"])),
    "an unknown date format": lambda path: path.write_text(_column_document(formats={"Date of Birth": "%d"})),
    "stray text in a column not in the reference": lambda path: path.write_text(
        _column_document(strays=[["Nope", 1, 10, "x"]])
    ),
    "stray text counted oddly": lambda path: path.write_text(_column_document(strays=[["Balance", -1, True, "x"]])),
    "two scales in a column not in the reference": lambda path: path.write_text(
        _column_document(scales=[["Nope", "2.500", "0.5"]])
    ),
    "codes in a column not in the reference": lambda path: path.write_text(_column_document(codes=[["Nope", "01040"]])),
    "codes in a column taken for an identifier": lambda path: path.write_text(
        _column_document(ids=["CustomerId"], codes=[["CustomerId", "01040"]])
    ),
    "two scales with a long example": lambda path: path.write_text(
        _column_document(scales=[["Balance", "1" * 41, "0.5"]])
    ),
    "too large": lambda path: path.write_text(_column_document() + " " * 2_000_000),
    "a link": lambda path: (path.unlink(), path.symlink_to(path.parent.parent.parent / "victim.txt")),
    "a folder": lambda path: (path.unlink(), path.mkdir(), (path / "keep.txt").write_text("mine")),
}


@pytest.mark.parametrize("case", list(COLUMN_CACHE_TAMPERING))
def test_a_tampered_column_cache_is_ignored_and_rebuilt(ws, case):
    """The kept classification of the reference's columns (dates, identifiers) is used only when it
    is one churnops could have written for this reference and configuration."""
    expected = json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())
    cache = _column_cache(ws)
    COLUMN_CACHE_TAMPERING[case](cache)
    if case not in ("a link", "a folder"):
        resign(cache)
    done = monitor(ws)
    assert done.returncode == 0, done.stderr
    assert "ignoring unusable column cache" in done.stderr and "Traceback" not in done.stderr
    metrics = json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())
    assert metrics["dataset_drift"] == expected["dataset_drift"]
    assert metrics["columns"].keys() == expected["columns"].keys()
    assert (ws / "victim.txt").read_text() == VICTIM_TEXT
    if case == "a folder":
        assert (cache / "keep.txt").read_text() == "mine"
        return
    assert not cache.is_symlink() and json.loads(cache.read_text())["format"] == INFERENCE_FORMAT  # rebuilt
    assert "ignoring" not in monitor(ws).stderr


METRICS_DAMAGE = {
    "not JSON": lambda text: text[: len(text) // 2],
    "another document": lambda text: json.dumps({"hello": "world"}),
    "a wrong type": lambda text: text.replace('"n_columns": 16', '"n_columns": "sixteen"'),
    "a list": lambda text: "[1, 2, 3]",
}


@pytest.mark.parametrize("case", list(METRICS_DAMAGE))
@pytest.mark.parametrize("command", [["notify", "--dry-run"], ["metrics", "export", "--print"], ["notify"]])
def test_a_corrupt_metrics_file_is_one_line_not_a_crash(ws, case, command):
    path = ws / "monitoring" / "monitoring_metrics.json"
    path.write_text(METRICS_DAMAGE[case](path.read_text()))
    line = one_error_line(churnops(ws, *command))
    assert "monitoring_metrics.json" in line and "run 'churnops monitor' again" in line
    assert monitor(ws).returncode == 0  # the next run writes good metrics again


def test_a_history_database_that_is_garbage_or_a_link_never_stops_the_monitoring(ws):
    history = ws / "monitoring" / "history.db"
    history.write_bytes(b"not a database at all" * 100)
    done = monitor(ws)
    assert done.returncode == 0, done.stderr
    assert "history" in done.stderr
    history.unlink()
    history.symlink_to(ws / "victim.txt")
    done = monitor(ws)
    assert done.returncode == 0, done.stderr
    assert "symbolic link" in done.stderr
    assert (ws / "victim.txt").read_text() == VICTIM_TEXT


def test_a_one_row_reference_does_not_poison_the_history(ws):
    """Statistics of a 1-row reference overflow; they must not break later runs (trend charts)."""
    pl.read_csv(ws / "data" / "churn.csv").head(1).write_csv(ws / "one.csv")
    for _ in range(3):
        done = churnops(ws, "monitor", "--reference", "one.csv")
        assert done.returncode == 0, done.stderr
    done = monitor(ws)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(ws / "monitoring" / "history.db") as db:
        values = [row[0] for row in db.execute("SELECT statistic FROM column_results WHERE statistic IS NOT NULL")]
    assert all(abs(v) < 1e300 for v in values)
    history = churnops(ws, "history", "--format", "json")
    assert history.returncode == 0 and len(json.loads(history.stdout)) >= 5


def test_a_profile_cache_rewritten_without_the_key_is_not_used(ws):
    """A well-formed profile rewritten with the batch's values and target counts (np.savez: every
    format check passes) turned an ALERT into 'OK: no drift', said nowhere. A cache file is used
    only when its signature, made with a key kept outside the workspace, matches: a file rewritten
    by anyone without the key - here one that every other check accepts - is rebuilt."""
    from churnops.pipeline.profile_cache import read_profile, save_profile

    expected = json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())
    cache = _profile_cache(ws)
    signature = cache.parent / (cache.name + ".sig")
    profile, meta = read_profile(cache)
    for forged in (None, "0" * 64):  # no signature, then a made-up one
        save_profile(profile, cache, {**meta, "reference": "rewritten elsewhere"})  # valid, other bytes
        if forged is None:
            signature.unlink()
        else:
            signature.write_text(forged + "\n")
        done = monitor(ws)
        assert done.returncode == 0, done.stderr
        metrics = json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())
        assert metrics["outputs"]["profile_cache"] == "miss", done.stderr
        assert metrics["dataset_drift"] == expected["dataset_drift"]
        assert forged is None or "its signature does not match" in done.stderr, done.stderr
    done = monitor(ws)  # rebuilt and signed: used
    assert "ignoring" not in done.stderr
    assert json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())["outputs"]["profile_cache"] == "hit"


def test_metrics_edited_to_hide_an_alert_are_not_sent(ws):
    """The metrics of an alerting run, edited to a verdict 'ok' under the same run id: `notify`
    sent "No alert", and `notify --status drift --run-id` (the Jenkinsfile's step) refused to send
    the alert as contradicting the run. The history recorded the run's verdict: a metrics file
    that disagrees with it is not sent."""
    path = ws / "monitoring" / "monitoring_metrics.json"
    metrics = json.loads(path.read_text())
    assert metrics["verdict"]["status"] == "alert"
    done = churnops(ws, "notify", "--dry-run")
    assert done.returncode == 0 and "Alert" in done.stdout, done.stdout + done.stderr  # as the run said
    edits = [
        {**metrics, "verdict": {**metrics["verdict"], "status": "ok", "trigger": False, "reasons": []}},
        {**metrics, "verdict": {**metrics["verdict"], "trigger": False}},  # the status left 'alert'
        {k: v for k, v in metrics.items() if k != "verdict"}
        | {"dataset_drift": {**metrics["dataset_drift"], "detected": False}},
    ]
    for edited in edits:
        path.write_text(json.dumps(edited))
        for args in (["notify"], ["notify", "--status", "drift", "--run-id", metrics["run_id"]]):
            done = churnops(ws, *args)
            assert done.returncode == 2, done.stdout + done.stderr
            assert f"the metrics of run {metrics['run_id']} say 'ok', but the history recorded 'alert'" in done.stderr
    assert (
        not (ws / "monitoring" / "notification.txt").exists()
        or "No alert" not in (ws / "monitoring" / "notification.txt").read_text()
    )


def test_a_signed_cache_copied_under_another_entrys_name_is_not_used(ws):
    """A profile and its signature, both made by churnops for another configuration (a column
    ignored), copied under this configuration's name: the signature covered the bytes only, the
    copy was a hit and the ALERT became OK. It covers the name too (the cache's key)."""
    expected = json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())
    assert monitor(ws, "--set", "columns.ignored=['Surname', 'First Name', 'Balance', 'Income']").returncode == 0
    files = sorted((ws / ".churnops" / "profiles").glob("*.npz"), key=lambda p: p.stat().st_mtime_ns)
    this, other = files[0], files[-1]
    for suffix in ("", ".sig"):
        shutil.copyfile(other.parent / (other.name + suffix), this.parent / (this.name + suffix))
    done = monitor(ws)
    assert done.returncode == 0 and "its signature does not match" in done.stderr, done.stderr
    metrics = json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())
    assert metrics["outputs"]["profile_cache"] == "miss" and metrics["dataset_drift"] == expected["dataset_drift"]


def test_a_key_anyone_could_guess_is_no_key(ws):
    """CHURNOPS_CACHE_KEY=' ' was taken as a key: anyone could sign a profile with it."""
    env = {**os.environ, "CHURNOPS_CACHE_KEY": " "}
    done = subprocess.run([*CHURNOPS, "monitor", "--reference-rows", "0:4000"], cwd=ws, capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    said = done.stderr.count("CHURNOPS_CACHE_KEY holds fewer than 16 characters")
    assert done.returncode == 0 and said == 1, done.stderr
    assert json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())["outputs"]["profile_cache"] == "miss"


def test_without_a_key_to_sign_it_nothing_is_cached(ws):
    """No CHURNOPS_CACHE_KEY and no configuration folder to keep a key in: the run goes on, its
    profile built from the reference and not cached, and says so once."""
    blocked = ws / "not-a-folder"
    blocked.write_text("a file where the configuration folder would be\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(blocked)}
    done = subprocess.run([*CHURNOPS, "monitor", "--reference-rows", "0:4000"], cwd=ws, capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "no key to sign it" in line]
    assert len(said) == 1 and "set CHURNOPS_CACHE_KEY" in said[0], done.stderr
    env["CHURNOPS_CACHE_KEY"] = "one secret shared by the runners"
    for status in ("miss", "hit"):  # a key given: cached, and used
        done = subprocess.run([*CHURNOPS, "monitor", "--reference-rows", "0:4000"], cwd=ws, capture_output=True,
                              text=True, env=env, timeout=300)  # fmt: skip
        assert json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())["outputs"]["profile_cache"] == (
            status
        ), done.stderr


def test_a_compressed_npz_member_is_never_decompressed(ws):
    """A cache member that is compressed (a possible decompression bomb) is refused as a whole."""
    cache = _profile_cache(ws)
    bomb = ws / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("values_0.npy", b"\0" * 50_000_000)
    shutil.copy(bomb, cache)
    resign(cache)  # (unsigned, it is not even read)
    done = monitor(ws)
    assert done.returncode == 0 and "ignoring unusable profile cache" in done.stderr


def test_an_unreadable_model_registry_is_said_not_silently_skipped(ws):
    """A dead model must not hide behind a registry churnops cannot read: the run says so."""
    pytest.importorskip("mlflow")
    (ws / "mlflow.db").write_bytes(b"this is not an SQLite database" * 100)
    done = churnops(ws, "monitor", "--reference-rows", "0:2000")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "model not checked" in warnings[0] and "mlflow.db" in warnings[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (400, '{{"error": "unknown path {path}", "auth": "{auth}"}}', "answered an error that is not MLflow's"),
        (401, "<html>no entry for {path} with {auth}</html>", "the tracking server answered HTTP 401"),
        (
            403,
            '{{"error_code": "PERMISSION_DENIED", "message": "{auth} may not"}}',
            "answered the error PERMISSION_DENIED",
        ),
    ],
    ids=["json-not-mlflow", "html", "mlflow-error"],
)
def test_a_tracking_server_repeating_the_credentials_never_gets_them_printed(ws, status, body, said):
    """The MLflow tracking server's error text is not shown - only its status or MLflow's error
    code: here it repeats the request's Authorization header (base64 of user:password)."""
    pytest.importorskip("mlflow")
    import http.server
    import threading

    seen: list[str] = []

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            auth = self.headers.get("Authorization", "")
            seen.append(auth)
            answer = body.format(path=self.path, auth=auth).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_POST = do_GET  # noqa: N815

        def log_message(self, format, *args):  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://mluser:MlPassw0rd@127.0.0.1:{server.server_address[1]}/mlflow"
    try:
        done = churnops(ws, "monitor", "--reference-rows", "0:2000", "--set", f"model.tracking_uri={uri}")
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert seen and seen[0] == "Basic bWx1c2VyOk1sUGFzc3cwcmQ="  # the server did get, and repeat, the credentials
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "model not checked" in warnings[0] and said in warnings[0], done.stderr
    printed = done.stdout + done.stderr
    for secret in ("bWx1c2VyOk1sUGFzc3cwcmQ=", "MlPassw0rd", "mluser", "unknown path", "no entry", "may not"):
        assert secret not in printed, (secret, printed)
