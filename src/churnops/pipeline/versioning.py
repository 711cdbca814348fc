"""Seed phase 4 for the CLI and the pipeline: version the production batch with DVC."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from churnops.config import Config
from churnops.data.io import sha256_file
from churnops.data.production import meta_path_for
from churnops.integrations import dvc
from churnops.pipeline.monitoring import METRICS_FILE
from churnops.pipeline.outputs import recover


def batch_facts(config: Config, batch: Path) -> dict[str, Any]:
    """Facts for the version's commit message: from the latest metrics when they describe this batch."""
    facts: dict[str, Any] = {"sha256": sha256_file(batch)}
    metrics_path = config.monitoring_dir / METRICS_FILE
    recover(config.monitoring_dir)
    if metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
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
