"""Seed phase 4 for the CLI and the pipeline: version the production batch with DVC."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from churnops.config import Config
from churnops.data.io import sha256_file
from churnops.data.production import meta_path_for
from churnops.errors import ConfigError, InputDataError
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
    return dvc.setup(config.root, config.dvc.remote_name, url, options=remote_options(config, url))


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


def restore_batch(config: Config, revision: str, output: Path | None = None) -> tuple[Path, str]:
    return dvc.restore_version(config.root, config.resolve(config.paths.production), revision, output)
