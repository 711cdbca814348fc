"""Tampered model artifacts in a real MLflow store: refused, and their payloads never run.

Every case edits the champion's artifact folder in place - what someone with write access to
the artifact store could do - runs the real CLI, and puts the folder back afterwards. Each
payload would create a marker file if it ran; the marker must never appear. The payloads are
built with the real pickle, cloudpickle and skops, so on a loader that trusts the artifact's own
MLmodel they do run.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import shutil
import sys
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import jsonschema
import numpy as np
import pytest

pytest.importorskip("mlflow", reason="needs: mlflow (pip install 'churnops[mlflow]')")
pytest.importorskip("sklearn", reason="needs: scikit-learn")
yaml = pytest.importorskip("yaml", reason="needs: pyyaml (an MLflow dependency)")

from churnops.config import load_config  # noqa: E402
from churnops.pipeline.modeling import store_of  # noqa: E402
from churnops.report.metrics import metrics_schema  # noqa: E402


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A workspace with the embedded data, a production batch and a trained champion."""
    from typer.testing import CliRunner

    from churnops.cli import app

    root = tmp_path_factory.mktemp("tampering")
    previous = Path.cwd()
    import os

    os.chdir(root)
    runner = CliRunner()

    def cli(*args):
        return runner.invoke(app, list(args), catch_exceptions=False)

    try:
        assert cli("data", "init").exit_code == 0
        assert cli("generate").exit_code == 0
        result = cli("train")
        assert result.exit_code == 0, result.output
        yield root, cli
    finally:
        os.chdir(previous)


def champion_folder() -> Path:
    import mlflow

    store = store_of(load_config())
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri)
    version = client.get_model_version_by_alias("bank-churn", "champion").version
    uri = client.get_model_version_download_uri("bank-churn", version)
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


@pytest.fixture()
def tamper(champion, tmp_path, monkeypatch):
    """``tamper(edit)`` edits the champion's artifact folder; the original comes back afterwards."""
    root, _ = champion
    folder = champion_folder()
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup, symlinks=True)
    # an old loader puts the artifact's code/ folder on sys.path and imports from it: undo that
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)

    def apply(edit: Callable[[Path], None], keep_arrays: bool = False) -> Path:
        """Unless ``keep_arrays``, the model's array form goes too: churnops then reads model.skops."""
        if not keep_arrays:
            (folder / "scorer.npz").unlink()
        edit(folder)
        return folder

    yield apply
    shutil.rmtree(folder)
    shutil.copytree(backup, folder, symlinks=True)
    for name in set(sys.modules) - before:
        if name.startswith("churnops_payload_"):
            del sys.modules[name]


def read_mlmodel(folder: Path) -> dict:
    return yaml.safe_load((folder / "MLmodel").read_text())


def write_mlmodel(folder: Path, document: dict) -> None:
    (folder / "MLmodel").write_text(yaml.safe_dump(document, sort_keys=False))


def marker_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('payload ran')"


class Reducer:
    """Pickles as ``function(*args)``: what a pickle payload looks like."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def skops_call(module: str, name: str, argument: str) -> bytes:
    """A skops file whose root is ``module.name(argument)`` (skops' constructor node)."""
    import skops.io

    class Holder:
        def __init__(self, value):
            self.value = value

        def __reduce__(self):
            return Holder, (self.value,)

    return _renamed(skops.io.dumps(Holder(argument)), module, name)


def skops_object(module: str, name: str) -> bytes:
    """A skops file whose root is an instance of ``module.name`` (skops' object node)."""
    import skops.io

    class Plain:
        pass

    thing = Plain()
    thing.size = 1
    return _renamed(skops.io.dumps(thing), module, name)


def _renamed(data: bytes, module: str, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    schema = json.loads(files["schema.json"])
    schema["__module__"], schema["__class__"] = module, name
    files["schema.json"] = json.dumps(schema).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for filename, content in files.items():
            archive.writestr(filename, content)
    return out.getvalue()


def as_pickle(kind: str, marker: Path) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        payload = Reducer(exec, marker_code(marker))
        if kind == "cloudpickle":
            import cloudpickle

            data = cloudpickle.dumps(payload)
        else:
            data = pickle.dumps(payload)
        (folder / "model.skops").unlink()
        (folder / "model.pkl").write_bytes(data)
        document = read_mlmodel(folder)
        document["flavors"]["sklearn"].update(serialization_format=kind, pickled_model="model.pkl")
        document["flavors"]["sklearn"].pop("skops_trusted_types", None)
        document["flavors"]["python_function"]["model_path"] = "model.pkl"
        write_mlmodel(folder, document)

    return edit


def trusting(types: list[str], skops_file: bytes, code: dict[str, str] | None = None) -> Callable[[Path], None]:
    """model.skops replaced; MLmodel extended to trust ``types`` (and ship ``code``)."""

    def edit(folder: Path) -> None:
        (folder / "model.skops").write_bytes(skops_file)
        document = read_mlmodel(folder)
        flavor = document["flavors"]["sklearn"]
        flavor["skops_trusted_types"] = [*flavor.get("skops_trusted_types", []), *types]
        if code:
            (folder / "code").mkdir()
            for filename, text in code.items():
                (folder / "code" / filename).write_text(text)
            flavor["code"] = "code"
        write_mlmodel(folder, document)

    return edit


def payload_cases(marker: Path) -> dict[str, tuple[Callable[[Path], None], str]]:
    """name -> (edit of the artifact folder, a word the refusal must contain)."""
    module = f"churnops_payload_{uuid.uuid4().hex[:12]}"
    return {
        "pickle": (as_pickle("pickle", marker), "pickle"),
        "cloudpickle": (as_pickle("cloudpickle", marker), "cloudpickle"),
        "trusted-types-in-MLmodel": (
            trusting(["builtins.exec"], skops_call("builtins", "exec", marker_code(marker))),
            "builtins.exec",
        ),
        "untrusted-os-function": (
            lambda folder: (folder / "model.skops").write_bytes(skops_call("os", "system", f"touch {marker}")),
            "os.system",
        ),
        "untrusted-custom-class": (
            lambda folder: (folder / "model.skops").write_bytes(skops_object(module, "Payload")),
            f"{module}.Payload",
        ),
        "custom-class-from-artifact-code": (
            trusting(
                [f"{module}.Payload"],
                skops_object(module, "Payload"),
                {f"{module}.py": f"{marker_code(marker)}\n\nclass Payload:\n    pass\n"},
            ),
            "code",
        ),
    }


CASES = [
    "pickle",
    "cloudpickle",
    "trusted-types-in-MLmodel",
    "untrusted-os-function",
    "untrusted-custom-class",
    "custom-class-from-artifact-code",
]


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    return lines[0]


def model_warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("WARNING:") and "model" in line]


def metrics(root: Path) -> dict:
    document = json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())
    jsonschema.validate(document, metrics_schema())
    return document


@pytest.mark.parametrize("case", CASES)
def test_a_payload_in_the_artifact_never_runs(champion, tamper, tmp_path, case):
    root, cli = champion
    marker = tmp_path / "payload-ran"
    edit, reason = payload_cases(marker)[case]
    tamper(edit)

    result = cli("predict", "--input", "data/production/bank_churn_prod.csv", "--output", str(tmp_path / "p.csv"))
    assert not marker.exists(), "the payload ran during predict"
    line = one_error_line(result.output)
    assert result.exit_code == 2, result.output
    assert "refused" in line and reason in line, line
    assert not (tmp_path / "p.csv").exists()

    result = cli("monitor")
    assert not marker.exists(), "the payload ran during monitor"
    assert result.exit_code == 0, result.output
    warnings = model_warnings(result.output)
    assert len(warnings) == 1 and "refused" in warnings[0] and reason in warnings[0], result.output
    model = metrics(root)["model"]
    assert "refused" in model["error"] and reason in model["error"]
    assert model["version"] and model["alias"] == "champion"
    assert model["decay"]["detected"] is False
    assert (root / "monitoring" / "monitoring_report.html").is_file()


def test_retrain_refuses_a_tampered_champion(champion, tamper, tmp_path):
    _, cli = champion
    marker = tmp_path / "payload-ran"
    edit, _ = payload_cases(marker)["pickle"]
    tamper(edit)
    result = cli("retrain")
    assert not marker.exists()
    line = one_error_line(result.output)
    assert result.exit_code == 2 and "refused" in line and "pickle" in line


def test_a_symlinked_model_file_is_refused(champion, tamper, tmp_path):
    """The link points at a genuine model: only where it lives is wrong."""
    _, cli = champion
    outside = tmp_path / "elsewhere.skops"

    def edit(folder: Path) -> None:
        shutil.move(folder / "model.skops", outside)
        (folder / "model.skops").symlink_to(outside)

    tamper(edit)
    result = cli("predict", "--input", "data/production/bank_churn_prod.csv", "--output", str(tmp_path / "p.csv"))
    line = one_error_line(result.output)
    assert result.exit_code == 2 and "refused" in line and "symbolic link" in line, line


def test_a_model_folder_without_model_skops_is_refused(champion, tamper, tmp_path):
    _, cli = champion
    tamper(lambda folder: (folder / "model.skops").unlink())
    result = cli("predict", "--input", "data/production/bank_churn_prod.csv", "--output", str(tmp_path / "p.csv"))
    line = one_error_line(result.output)
    assert result.exit_code == 2 and "refused" in line and "model.skops" in line, line


def test_a_model_that_is_not_a_zip_is_refused(champion, tamper, tmp_path):
    _, cli = champion
    tamper(lambda folder: (folder / "model.skops").write_bytes(b"not a zip file"))
    result = cli("predict", "--input", "data/production/bank_churn_prod.csv", "--output", str(tmp_path / "p.csv"))
    line = one_error_line(result.output)
    assert result.exit_code == 2 and "refused" in line, line


BAD_METADATA = {
    "threshold-nan": (("threshold",), math.nan),
    "threshold-string": (("threshold",), "0.3; import os"),
    "threshold-huge": (("threshold",), 1e308),
    "threshold-bool": (("threshold",), True),
    "reference-auc-nan": (("reference_metrics", "roc_auc"), math.nan),
    "reference-auc-string": (("reference_metrics", "roc_auc"), "high"),
    "importance-huge": (("importance", "Balance"), 1e300),
    "importance-infinite": (("importance", "Balance"), math.inf),
    "features-not-a-list": (("features", "numerical"), "Balance"),
    "features-not-names": (("features", "numerical"), [1, 2, 3]),
    "features-unknown-group": (("features", "pickled"), ["Balance"]),
    "as-of-not-a-date": (("as_of",), "yesterday"),
    "metadata-not-a-mapping": ((), ["threshold", 0.5]),
}


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_bad_metadata_is_refused(champion, tamper, tmp_path, case):
    root, cli = champion
    path, value = BAD_METADATA[case]

    def edit(folder: Path) -> None:
        document = read_mlmodel(folder)
        if not path:
            document["metadata"] = value
        else:
            target = document["metadata"]
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        write_mlmodel(folder, document)

    tamper(edit)
    result = cli("predict", "--input", "data/production/bank_churn_prod.csv", "--output", str(tmp_path / "p.csv"))
    line = one_error_line(result.output)
    assert result.exit_code == 2 and "refused" in line and "metadata" in line, line
    if path:
        assert path[0] in line, line
    result = cli("monitor")
    assert result.exit_code == 0, result.output
    assert len(model_warnings(result.output)) == 1, result.output
    assert "metadata" in metrics(root)["model"]["error"]


@pytest.mark.parametrize(
    "bad",
    ["float32", "2-d", "nan", "above-one", "short", "object", "not-npy", "symlink"],
)
def test_a_bad_reference_prediction_cache_is_rebuilt(champion, bad, tmp_path):
    """The cache of the champion's reference scores is ours, yet read as untrusted input."""
    root, cli = champion
    assert cli("monitor").exit_code == 0
    first = metrics(root)["model"]
    caches = sorted((root / ".churnops").rglob("predictions/*.npy"))
    assert len(caches) == 1, caches
    cache = caches[0]
    good = np.load(cache, allow_pickle=False)
    assert good.dtype == np.float64 and good.ndim == 1 and len(good) == 20_000
    cache.unlink()
    if bad == "float32":
        np.save(cache, good.astype(np.float32))
    elif bad == "2-d":
        np.save(cache, good.reshape(-1, 2))
    elif bad == "nan":
        np.save(cache, np.where(np.arange(len(good)) == 7, np.nan, good))
    elif bad == "above-one":
        np.save(cache, good + 1.0)
    elif bad == "short":
        np.save(cache, good[:-1])
    elif bad == "object":
        np.save(cache, good.astype(object), allow_pickle=True)
    elif bad == "not-npy":
        cache.write_bytes(b"\x93NUMPY garbage")
    else:
        np.save(tmp_path / "outside.npy", np.zeros(len(good)))
        cache.symlink_to(tmp_path / "outside.npy")

    result = cli("monitor")
    assert result.exit_code == 0, result.output
    again = metrics(root)["model"]
    assert again["prediction_drift"]["statistic"] == pytest.approx(first["prediction_drift"]["statistic"])
    assert not cache.is_symlink()
    rebuilt = np.load(cache, allow_pickle=False)
    np.testing.assert_array_equal(rebuilt, good)


def _probabilities(path: Path) -> np.ndarray:
    import polars as pl

    return pl.read_csv(path).get_column("churn_probability").to_numpy()


def test_predict_scores_with_the_array_form_without_importing_scikit_learn(champion, tamper, tmp_path):
    """Same probabilities as the skops model, in a process that never imports scikit-learn or skops."""
    import subprocess

    root, cli = champion
    program = (
        "import sys\n"
        "from churnops.cli import main\n"
        "batch = 'data/production/bank_churn_prod.csv'\n"
        "sys.argv = ['churnops', 'predict', '--input', batch, '--output', sys.argv[1]]\n"
        "code = 0\ntry:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print('imported:', sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'skops', 'mlflow', 'scipy'}))\n"
        "sys.exit(code)\n"
    )
    arrays = tmp_path / "arrays.csv"
    done = subprocess.run([sys.executable, "-c", program, str(arrays)], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "imported: []" in done.stdout, done.stdout
    tamper(lambda folder: None)  # the array form removed: model.skops is loaded
    result = cli("predict", "--input", "data/production/bank_churn_prod.csv", "--output", str(tmp_path / "skops.csv"))
    assert result.exit_code == 0, result.output
    assert not model_warnings(result.output), result.output
    np.testing.assert_array_equal(_probabilities(arrays), _probabilities(tmp_path / "skops.csv"))


def _flip_a_byte(folder: Path) -> None:
    data = bytearray((folder / "scorer.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "scorer.npz").write_bytes(bytes(data))


def _forged_with_its_digest(folder: Path) -> None:
    """A walk that loops back to the root, written with a matching sha256 in MLmodel."""
    import hashlib

    with np.load(folder / "scorer.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    left = arrays["node_left"].copy()
    left[np.flatnonzero(arrays["node_is_leaf"] == 0)[5]] = 0
    arrays["node_left"] = left
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (folder / "scorer.npz").write_bytes(buffer.getvalue())
    document = read_mlmodel(folder)
    document["metadata"]["scorer_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    write_mlmodel(folder, document)


def _symlinked(folder: Path) -> None:
    outside = folder.parent / "scorer-elsewhere.npz"
    shutil.move(folder / "scorer.npz", outside)
    (folder / "scorer.npz").symlink_to(outside)


def _a_folder(folder: Path) -> None:
    (folder / "scorer.npz").unlink()
    (folder / "scorer.npz").mkdir()


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (_flip_a_byte, "sha256"),
        (_forged_with_its_digest, "child"),
        (_symlinked, "symbolic link"),
        (_a_folder, "regular"),
    ],
    ids=["a-flipped-byte", "forged-with-its-digest", "a-symbolic-link", "a-folder"],
)
def test_a_tampered_array_form_is_not_used_and_the_skops_model_scores(champion, tamper, tmp_path, edit, why):
    root, cli = champion
    genuine = tmp_path / "genuine.csv"
    assert cli("predict", "--input", "data/production/bank_churn_prod.csv", "--output", str(genuine)).exit_code == 0
    folder = tamper(edit, keep_arrays=True)
    result = cli("predict", "--input", "data/production/bank_churn_prod.csv", "--output", str(tmp_path / "p.csv"))
    assert result.exit_code == 0, result.output
    warnings = model_warnings(result.output)
    assert len(warnings) == 1 and "scorer.npz" in warnings[0] and why in warnings[0], result.output
    np.testing.assert_array_equal(_probabilities(tmp_path / "p.csv"), _probabilities(genuine))
    if edit is _symlinked:
        assert (folder.parent / "scorer-elsewhere.npz").is_file()  # read through no link, left alone


def test_a_model_is_never_written_where_the_registry_database_or_a_link_leads(champion, tmp_path):
    """The experiment's artifact location is a row of mlflow.db: pointed elsewhere, train wrote the
    whole model there (its input example holds customers' rows) with a warning, and that copy became
    the champion. A link in the artifact folder led the files elsewhere with no word at all."""
    import sqlite3

    root, cli = champion
    store = store_of(load_config())
    aliases_before = _aliases()
    outside = tmp_path / "outside"
    database = root / "mlflow.db"
    with sqlite3.connect(database) as connection:
        (location,) = connection.execute(
            "SELECT artifact_location FROM experiments WHERE name = ?", (store.experiment,)
        ).fetchone()
        connection.execute(
            "UPDATE experiments SET artifact_location = ? WHERE name = ?", (outside.as_uri(), store.experiment)
        )
    try:
        result = cli("train")
        assert result.exit_code == 2, result.output
        assert "keeps its models in" in result.output and "churnops writes a model only where" in result.output
        assert not outside.exists() and _aliases() == aliases_before
    finally:
        with sqlite3.connect(database) as connection:
            connection.execute(
                "UPDATE experiments SET artifact_location = ? WHERE name = ?", (location, store.experiment)
            )
    artifacts = Path(store.artifact_root)
    moved = tmp_path / "models"
    shutil.move(artifacts / "models", moved)
    (artifacts / "models").symlink_to(moved)
    try:
        before = {p.name for p in moved.iterdir()}
        result = cli("train")
        assert result.exit_code == 2, result.output
        assert "is a symbolic link in the model artifact folder" in result.output
        assert {p.name for p in moved.iterdir()} == before and _aliases() == aliases_before
    finally:
        (artifacts / "models").unlink()
        shutil.move(moved, artifacts / "models")


def _aliases() -> dict[str, str]:
    from churnops.integrations import mlflow_registry as registry

    return registry.aliases(store_of(load_config()), "bank-churn")
