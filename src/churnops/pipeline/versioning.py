"""Seed phase 4 for the CLI and the pipeline: version the production batch with DVC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnops.config import Config
from churnops.data.io import sha256_file
from churnops.data.production import meta_path_for
from churnops.errors import InputDataError
from churnops.integrations import dvc
from churnops.pipeline.workspace import read_metrics, workspace


def batch_facts(config: Config, batch: Path) -> dict[str, Any]:
    """Facts for the version's commit message: from the latest metrics when they describe this batch."""
    facts: dict[str, Any] = {"sha256": sha256_file(batch)}
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
    return dvc.setup(config.root, config.dvc.remote_name, config.dvc.remote_url)


def version_current_batch(config: Config, batch: Path | None = None) -> dvc.VersionOutcome:
    path = batch or config.resolve(config.paths.production)
    return dvc.version_batch(config.root, path, batch_facts(config, path), meta_path_for(path), config.dvc.push)


def list_batch_versions(config: Config, batch: Path | None = None) -> list[dvc.BatchVersion]:
    return dvc.list_versions(config.root, batch or config.resolve(config.paths.production))


def restore_batch(config: Config, revision: str, output: Path | None = None) -> tuple[Path, str]:
    return dvc.restore_version(config.root, config.resolve(config.paths.production), revision, output)
