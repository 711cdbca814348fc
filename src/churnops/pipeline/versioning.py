"""Seed phase 4 for the CLI and the pipeline: version the production batch with DVC."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.config import Config
from churnops.data.files import refuse_unowned
from churnops.data.io import sha256_file
from churnops.data.production import meta_path_for
from churnops.errors import ConfigError, InputDataError, IntegrationError, MissingDependencyError
from churnops.integrations import dvc
from churnops.pipeline.workspace import read_metrics, workspace

logger = logging.getLogger(__name__)

SIDECAR_PARAMS = {"scenario.name": "scenario", "scenario.intensity": "intensity", "scenario.seed": "seed"}
"""dvc.yaml params (churnops.toml keys) and where the batch's metadata sidecar records them."""


def batch_facts(config: Config, batch: Path, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """Facts for the version's commit message: from the latest metrics when they describe this
    batch (``metrics``: the document a pipeline just committed, instead of reading it back)."""
    facts: dict[str, Any] = {"sha256": sha256_file(batch)}
    if metrics is None:
        with workspace(config, shared=True, purpose="version"):
            try:
                metrics = read_metrics(config) or {}
            except InputDataError:
                metrics = {}
    if metrics.get("current", {}).get("sha256") == facts["sha256"]:
        facts = {
            "run_id": metrics["run_id"],
            "drift_score": float(metrics["dataset_drift"]["score"]),
            "drift_detected": bool(metrics["dataset_drift"]["detected"]),
            "rows": int(metrics["current"]["rows"]),
            **facts,
        }
    return facts


def setup_dvc(config: Config) -> dvc.SetupOutcome:
    url = config.dvc.remote_url
    if "://" not in url:  # a local folder: inside the project unless absolute (see churnops.config.paths)
        try:
            config.resolve_dir(url)
        except ConfigError as exc:
            raise ConfigError(f"dvc.remote_url: {exc}") from None
    locks = [
        config.lock_path,
        config.trigger_lock_path,
        config.model_lock_path,
    ]  # a run's lock files: never worth a commit
    return dvc.setup(config.root, config.dvc.remote_name, url, options=remote_options(config, url), lock_files=locks)


def remote_options(config: Config, url: str) -> dict[str, str]:
    """What an object-storage remote needs beside its URL: for ``s3://``, the DVC plugin and
    ``[storage]``'s endpoint and region (an S3-compatible server such as MinIO or Ceph). Credentials
    never go there: DVC reads them from the environment, the AWS profiles or the instance role."""
    from urllib.parse import urlsplit

    from churnops.errors import MissingDependencyError

    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ConfigError(
            "dvc.remote_url: holds credentials; give them in the environment (AWS_ACCESS_KEY_ID, ...), a profile "
            "or the instance role, never in the URL (it would be committed in .dvc/config)"
        )
    if parts.scheme != "s3":
        return {}
    import importlib.util

    if importlib.util.find_spec("dvc_s3") is None:
        raise MissingDependencyError("dvc-s3", "dvc-s3")
    options = {}
    if config.storage.endpoint_url:
        options["endpointurl"] = str(config.storage.endpoint_url)
    if config.storage.region:
        options["region"] = str(config.storage.region)
    return options


def version_current_batch(
    config: Config, batch: Path | None = None, metrics: dict[str, Any] | None = None
) -> dvc.VersionOutcome:
    path = batch or config.resolve(config.paths.production)
    facts = batch_facts(config, path, metrics)
    outcome = dvc.version_batch(config.root, path, facts, meta_path_for(path), config.dvc.push)
    if outcome.stage is not None:
        differences = params_differences(meta_path_for(path), outcome.params)
        if differences:
            logger.warning(
                "the batch was made with %s, but dvc.lock records the params file's values for stage '%s': "
                "'dvc repro' would make another batch (set them in params.yaml to keep both in step)",
                ", ".join(differences),
                outcome.stage,
            )
    return outcome


@dataclass(frozen=True)
class CheckedBatchVersion:
    """The version of the batch a monitoring run checked."""

    outcome: dvc.VersionOutcome
    batch: Path
    """The file versioned: ``paths.production``."""
    copied_from: Path | None
    """The file the run checked, when it was not ``paths.production`` (its bytes were copied there)."""

    def describe(self, root: Path) -> str:
        """One line for a user: which file was versioned, from where, and what DVC did."""
        name = _shown(self.batch, root)
        source = f" (copied from {self.copied_from})" if self.copied_from is not None else ""
        if self.outcome.changed:
            return f"versioned {name}{source}: {self.outcome.message}"
        at = f" at commit {self.outcome.commit[:10]}" if self.outcome.commit else ""
        return f"{name}{source} is already versioned{at} (unchanged): no new version"


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def version_checked_batch(config: Config, checked: Path, metrics: dict[str, Any]) -> CheckedBatchVersion:
    """Version exactly the batch a monitoring run checked (``metrics``: that run's document).

    Versions live at ``paths.production`` (where ``churnops versions list`` and ``restore`` look):
    a batch checked elsewhere (``--current FILE``, inside the project or not) is copied there
    first, replacing the previous batch when DVC keeps it - a file there that DVC does not keep
    (a user's own batch, never versioned, or changed since its version) is never replaced. The
    bytes must be those the run checked (its sha256): a batch changed since is refused, never
    versioned under the run's name.
    """
    run_id = metrics.get("run_id", "?")
    expected = (metrics.get("current") or {}).get("sha256")
    if not checked.is_file() or not isinstance(expected, str):
        raise InputDataError(
            f"{checked}: run {run_id} checked a folder or a table, not one file; DVC versioning takes one file "
            "(give the batch as a CSV or Parquet file)"
        )
    production = config.resolve(config.paths.production)
    if checked.resolve() == production.resolve():
        if sha256_file(checked) != expected:
            raise InputDataError(_changed(checked, run_id))
        return CheckedBatchVersion(version_current_batch(config, production, metrics), production, None)
    from churnops.data.io import table_format

    if table_format(checked) != table_format(production):
        raise InputDataError(
            f"{checked}: run {run_id} checked a {table_format(checked)} file, but versions are kept at "
            f"{_shown(production, config.root)} ({table_format(production)}): not versioned (set paths.production to a "
            f".{table_format(checked)} file, or give the batch as {table_format(production)})"
        )
    dvc.require_versioning(config.root)  # (a copy for a version that cannot be made is none to make)
    there = sha256_file(production) if production.is_file() and not production.is_symlink() else None
    lost = there is not None and there != expected and not _generated(production, there)
    if lost and not dvc.keeps(config.root, production):
        shown = _shown(production, config.root)
        raise InputDataError(
            f"{checked}: not versioned: versions are kept at {shown} (paths.production), and copying the batch "
            f"there would replace a file that DVC does not keep (never versioned, or changed since): set "
            f"paths.production to a file of its own (e.g. data/production/batch.csv), or version {shown} first "
            "(churnops version)"
        )
    _copy_verified(checked, production, expected, run_id)
    from churnops.pipeline.storage import drop_stale_sidecar

    drop_stale_sidecar(production)  # it described the batch replaced, not this one
    outcome = version_current_batch(config, production, metrics)
    return CheckedBatchVersion(outcome, production, checked.absolute())


def check_replaceable_batch(config: Config, batch: Path, flag: str) -> None:
    """Refuse to make a batch over a file at ``batch`` that churnops did not generate and DVC
    does not keep (a user's own table, named by ``-o`` or ``paths.production``): only a batch
    ``churnops generate`` wrote (its sidecar records its bytes) or one DVC keeps may be replaced
    (:func:`~churnops.data.files.refuse_unowned`)."""

    def owned(path: Path) -> bool:
        if _generated(path, sha256_file(path)):
            return True
        if not dvc.is_initialized(config.root) or config.root.resolve() not in path.resolve().parents:
            return False
        try:
            return dvc.keeps(config.root, path)
        except (IntegrationError, MissingDependencyError):
            return False

    refuse_unowned(
        batch,
        owned,
        f"{flag} {batch}: a file is there that churnops did not generate and DVC does not keep: choose another "
        "path, version it first (churnops version), or add --force to replace it",
    )


def _generated(batch: Path, sha: str) -> bool:
    """Whether ``batch`` (of sha256 ``sha``) is as ``churnops generate`` wrote it: its sidecar, a
    regular file, records these bytes - made again by the same command, lost by no copy."""
    import stat

    sidecar = meta_path_for(batch)
    try:
        if not stat.S_ISREG(os.lstat(sidecar).st_mode):
            return False
        document = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    output = document.get("output") if isinstance(document, dict) else None
    return isinstance(output, dict) and output.get("sha256") == sha and "scenario" in document


def version_run_batch(config: Config, run_id: str) -> CheckedBatchVersion:
    """Version the batch that run ``run_id`` checked, as the pipeline's stage 3 does - for a CI
    job whose stages are separate processes (``churnops version --run-id``).

    The latest metrics must be that run's: when another run wrote them since, nothing is
    versioned. The workspace is held meanwhile, so no run replaces them halfway.
    """
    from churnops.data.urls import is_url

    with workspace(config, shared=True, purpose="version"):
        metrics = read_metrics(config)
        if metrics is None:
            raise InputDataError(f"--run-id {run_id}: no metrics in {config.monitoring_dir}; run 'churnops monitor'")
        latest = metrics.get("run_id")
        if latest != run_id:
            raise InputDataError(
                f"--run-id {run_id}: the latest metrics are of run {latest} - another run wrote them since; "
                "nothing versioned (version in the same job as its monitoring, or run 'churnops pipeline')"
            )
        given = str((metrics.get("current") or {}).get("path") or "")
        if not given or is_url(given):  # a batch fetched from object storage was read at paths.production
            checked = config.resolve(config.paths.production)
        else:
            checked = Path(given) if Path(given).is_absolute() else config.root / given
        return version_checked_batch(config, checked, metrics)


def _changed(path: Path, run_id: str) -> str:
    return (
        f"{path} changed since run {run_id} checked it (its sha256 differs): not versioned under that run's name; "
        "monitor it again"
    )


def _copy_verified(source: Path, target: Path, expected: str, run_id: str) -> None:
    """Copy ``source`` onto ``target`` atomically, keeping it only if its sha256 is ``expected``."""
    from churnops.data.files import atomic_path

    digest = hashlib.sha256()
    with atomic_path(target) as tmp, source.open("rb") as reader, tmp.open("wb") as writer:
        while block := reader.read(1 << 20):
            digest.update(block)
            writer.write(block)
        writer.flush()
        os.fsync(writer.fileno())
        if digest.hexdigest() != expected:
            raise InputDataError(_changed(source, run_id))


def params_differences(sidecar: Path, params: dict[str, Any]) -> list[str]:
    """``KEY=VALUE`` of each stage param whose value differs from the one the batch was made with.

    ``dvc commit`` records the params file as it is, not the options ``churnops generate`` was
    given (``--scenario strong``); the batch's metadata sidecar says what was used.
    """
    try:
        made_with = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(made_with, dict):
        return []
    return [
        f"{key}={made_with[field]}"
        for key, field in SIDECAR_PARAMS.items()
        if key in params and field in made_with and made_with[field] != params[key]
    ]


def list_batch_versions(config: Config, batch: Path | None = None) -> list[dvc.BatchVersion]:
    return dvc.list_versions(config.root, batch or config.resolve(config.paths.production))


def restore_batch(config: Config, revision: str, output: Path | None = None, force: bool = False) -> tuple[Path, str]:
    """The batch as of ``revision``, written over the production batch, or to ``output``: never
    over a file that is none of the batch's versions (nor, at the batch's path, one churnops
    generated) unless ``force`` - a batch delivered since and never versioned would be lost."""
    batch = config.resolve(config.paths.production)
    if output is not None:
        config.check_paths(outputs={"--output": output})
    target = output if output is not None else batch

    def owned(path: Path) -> bool:
        sha = sha256_file(path)
        if output is None and _generated(batch, sha):
            return True
        return sha in {v.facts.get("sha256") for v in dvc.list_versions(config.root, batch)}

    if not force:
        flag = "--output" if output is not None else "paths.production"
        refuse_unowned(
            target,
            owned,
            f"{flag} {target}: a file is there that is no version of the batch"
            + ("" if output is not None else " (nor one churnops generated): version it first (churnops version)")
            + ", choose another path (-o), or add --force to replace it",
        )
    return dvc.restore_version(config.root, batch, revision, output)
